//! Fuzzes inference request decoding: arbitrary bytes as a JSON body, and as a JSON header
//! followed by binary tensor data. Decoding must return `Ok` or `Err`, never panic, and
//! never allocate beyond what the body could hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelpilot::serve::{
    protocol::{ResponseOutput, decode_request, encode_response},
    tensor::element_count,
};

fuzz_target!(|data: &[u8]| {
    // The first two bytes choose where the JSON header ends (0xFFFF = no binary part).
    let (split, body) = match data {
        [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]), rest),
        _ => return,
    };
    let header = (split != u16::MAX).then_some(usize::from(split));
    let Ok(request) = decode_request(body, header) else {
        return;
    };
    for input in &request.inputs {
        // Every decoded tensor holds exactly the elements its shape needs.
        assert_eq!(element_count(&input.shape).ok(), Some(input.data.len()));
    }
    // Whatever was decoded can be encoded back, as JSON and as binary.
    let outputs: Vec<ResponseOutput<'_>> = request
        .inputs
        .iter()
        .enumerate()
        .map(|(i, tensor)| ResponseOutput {
            tensor,
            binary: i % 2 == 0,
            parameters: None,
        })
        .collect();
    assert!(encode_response("m", "1", request.id.as_deref(), None, &outputs).is_ok());
});
