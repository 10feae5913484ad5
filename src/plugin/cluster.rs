//! The plugin's only contact with the API server: connect the way kubectl does, read the object,
//! write a request, and watch the object. Everything it prints is decided by the pure modules.

use std::{io::Write, path::Path, time::Duration};

use anyhow::Context;
use futures::{StreamExt, stream::BoxStream};
use kube::{
    Api, Client, Config, ResourceExt,
    api::{Patch, PatchParams},
    config::{KubeConfigOptions, Kubeconfig},
    runtime::{WatchStreamExt, watcher::watch_object},
};

use super::request::{Progress, Request, merge_patch, progress};
use crate::api::ModelDeployment;

/// The ModelDeployment a verb works on.
pub struct Target {
    /// Its API, in its namespace.
    pub api: Api<ModelDeployment>,
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
}

/// Connect with `--kubeconfig`/`--context` when given, otherwise as kubectl does (`KUBECONFIG`,
/// `~/.kube/config`, or the in-cluster service account); the namespace defaults to the context's.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    namespace: Option<&str>,
    name: &str,
) -> anyhow::Result<Target> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = match (kubeconfig, context) {
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(file, &options).await?
        }
        (None, Some(_)) => Config::from_kubeconfig(&options).await?,
        (None, None) => Config::infer()
            .await
            .context("no Kubernetes configuration (KUBECONFIG, ~/.kube/config or in-cluster)")?,
    };
    let namespace = namespace.map_or_else(|| config.default_namespace.clone(), str::to_string);
    let client = Client::try_from(config).context("building the Kubernetes client")?;
    Ok(Target {
        api: Api::namespaced(client, &namespace),
        name: name.to_string(),
        namespace,
    })
}

impl Target {
    /// The object, or an error saying plainly that it does not exist.
    pub async fn fetch(&self) -> anyhow::Result<ModelDeployment> {
        let found =
            self.api.get_opt(&self.name).await.with_context(|| {
                format!("reading ModelDeployment {}/{}", self.namespace, self.name)
            })?;
        found.ok_or_else(|| {
            anyhow::anyhow!(
                "ModelDeployment \"{}\" not found in namespace \"{}\" (kubectl get mdep -n {} lists them; is the modelpilot CRD installed?)",
                self.name,
                self.namespace,
                self.namespace
            )
        })
    }

    /// Write `request` onto the object's `modelpilot.io/request` annotation (JSON merge patch).
    pub async fn send(&self, request: &Request) -> anyhow::Result<()> {
        self.api
            .patch(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(merge_patch(request)),
            )
            .await
            .with_context(|| format!("writing the request on {}/{}", self.namespace, self.name))?;
        Ok(())
    }

    /// Watch the object until request `id` is answered or replaced; `None` after `timeout`.
    pub async fn await_answer(
        &self,
        id: &str,
        timeout: Duration,
    ) -> anyhow::Result<Option<Progress>> {
        let watch = async {
            let mut stream = self.watch();
            while let Some(obj) = stream.next().await {
                let Some(obj) = obj else {
                    anyhow::bail!(
                        "ModelDeployment {}/{} was deleted while waiting",
                        self.namespace,
                        self.name
                    );
                };
                match progress(&obj, id) {
                    Progress::Pending => continue,
                    answered => return Ok(answered),
                }
            }
            anyhow::bail!("the watch on {}/{} ended", self.namespace, self.name)
        };
        match tokio::time::timeout(timeout, watch).await {
            Ok(answer) => answer.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Print `render(obj)` now and again on every change of the object, until Ctrl-C or deletion.
    pub async fn follow(
        &self,
        first: ModelDeployment,
        render: impl Fn(&ModelDeployment) -> String,
    ) -> anyhow::Result<()> {
        use std::io::IsTerminal;
        let terminal = std::io::stdout().is_terminal();
        let print = |obj: &ModelDeployment, again: bool| {
            let mut out = std::io::stdout().lock();
            let separator = match (again, terminal) {
                (false, _) => "",
                (true, true) => "\x1b[2J\x1b[H",
                (true, false) => "---\n",
            };
            // A closed stdout (`| head`) ends the watch below through the next failed write.
            write!(out, "{separator}{}", render(obj)).and_then(|()| out.flush())
        };
        print(&first, false)?;
        let mut shown = first.resource_version();
        let mut stream = self.watch();
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => return Ok(()),
                next = stream.next() => match next {
                    Some(Some(obj)) if obj.resource_version() != shown => {
                        print(&obj, true)?;
                        shown = obj.resource_version();
                    }
                    Some(Some(_)) => {}
                    Some(None) => {
                        eprintln!("ModelDeployment {}/{} was deleted", self.namespace, self.name);
                        return Ok(());
                    }
                    None => anyhow::bail!("the watch on {}/{} ended", self.namespace, self.name),
                },
            }
        }
    }

    /// The object as it changes (`None` once deleted); watch errors are retried with backoff.
    fn watch(&self) -> BoxStream<'static, Option<ModelDeployment>> {
        watch_object(self.api.clone(), &self.name)
            .default_backoff()
            .filter_map(|event| async move {
                match event {
                    Ok(obj) => Some(obj),
                    Err(err) => {
                        eprintln!("watch error (retrying): {err}");
                        None
                    }
                }
            })
            .boxed()
    }
}
