//! Pure builders: one function per owned child object.
