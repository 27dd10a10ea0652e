//! Running a relabelling program that has plugin steps.
//!
//! Native rules run one label set at a time; a plugin step is one call for every label
//! set still in flight, because crossing into a sandbox costs far more than a rule and a
//! batch pays it once. So the program runs stage by stage over the whole batch: each
//! native stage over every surviving set, then one call per plugin stage.

use std::future::Future;
use std::pin::Pin;

use pharos_model::{Labels, relabel};
use pharos_plugin_host::Outcome;

use crate::config::{RelabelProgram, RelabelStage};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Calls relabeler plugins by name: the daemon's plugin set, or a fake in tests.
pub trait Relabelers: Send + Sync {
    /// One verdict per label set of `batch`, in order.
    fn relabel<'a>(
        &'a self,
        plugin: &'a str,
        batch: &'a [Labels],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, String>>;
}

/// Runs `program` over `batch`; `None` where a label set was dropped. A failing plugin
/// fails the whole batch: there is no fate to give its label sets that the operator
/// asked for.
pub async fn run(
    program: &RelabelProgram,
    batch: Vec<Labels>,
    plugins: &dyn Relabelers,
) -> Result<Vec<Option<Labels>>, String> {
    let mut sets: Vec<Option<Labels>> = batch.into_iter().map(Some).collect();
    for stage in program.stages() {
        match stage {
            RelabelStage::Rules(rules) => {
                for set in &mut sets {
                    if let Some(labels) = set {
                        *set = relabel::process(labels, rules).filter(|l| !l.is_empty());
                    }
                }
            }
            RelabelStage::Plugin(name) => {
                let (at, alive): (Vec<usize>, Vec<Labels>) = sets
                    .iter_mut()
                    .enumerate()
                    .filter_map(|(i, set)| set.take().map(|l| (i, l)))
                    .unzip();
                if alive.is_empty() {
                    break;
                }
                let verdicts = plugins.relabel(name, &alive).await?;
                if verdicts.len() != alive.len() {
                    return Err(format!(
                        "relabeler plugin {name:?} answered {} verdicts for {} label sets",
                        verdicts.len(),
                        alive.len()
                    ));
                }
                for ((i, labels), verdict) in at.into_iter().zip(alive).zip(verdicts) {
                    let kept = match verdict {
                        Outcome::Keep => Some(labels),
                        Outcome::Drop => None,
                        Outcome::Rewrite(new) => Some(new).filter(|l| !l.is_empty()),
                    };
                    if let Some(slot) = sets.get_mut(i) {
                        *slot = kept;
                    }
                }
            }
        }
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Decode, Path};
    use std::sync::Mutex;

    /// Drops sets whose `drop` label is "yes", rewrites `secret` to "x", and records the
    /// size of every batch it is called with.
    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<(String, usize)>>,
        short: bool,
    }

    impl Relabelers for Fake {
        fn relabel<'a>(
            &'a self,
            plugin: &'a str,
            batch: &'a [Labels],
        ) -> BoxFuture<'a, Result<Vec<Outcome>, String>> {
            Box::pin(async move {
                self.calls
                    .lock()
                    .map_err(|e| e.to_string())?
                    .push((plugin.to_owned(), batch.len()));
                if plugin == "broken" {
                    return Err("relabeler plugin \"broken\" trapped".into());
                }
                let mut out: Vec<Outcome> = batch
                    .iter()
                    .map(|l| {
                        if l.get("drop") == Some("yes") {
                            Outcome::Drop
                        } else if l.get("secret").is_some() {
                            Outcome::Rewrite(Labels::from_pairs(l.iter().map(|p| {
                                let v = if p.name == "secret" {
                                    "x"
                                } else {
                                    p.value.as_str()
                                };
                                (p.name.as_str(), v)
                            })))
                        } else {
                            Outcome::Keep
                        }
                    })
                    .collect();
                if self.short {
                    out.pop();
                }
                Ok(out)
            })
        }
    }

    fn program(json: &str) -> RelabelProgram {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        let mut errs = crate::config::ConfigErrors::new();
        let p = RelabelProgram::decode(&v, &Path::Root, &mut errs).unwrap();
        assert!(errs.is_empty());
        p
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn run_now(
        p: &RelabelProgram,
        batch: Vec<Labels>,
        fake: &Fake,
    ) -> Result<Vec<Option<Labels>>, String> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(run(p, batch, fake))
    }

    #[test]
    fn stages_run_in_order_with_one_call_per_plugin_step() {
        let p = program(
            r#"[{"source_labels": ["a"], "target_label": "drop", "regex": "bad", "replacement": "yes"},
                {"action": "plugin", "plugin": "guard"},
                {"regex": "a", "action": "labeldrop"},
                {"action": "Plugin", "plugin": "guard"}]"#,
        );
        assert_eq!(p.stages().len(), 4);
        assert!(p.native().is_none());
        let fake = Fake::default();
        let out = run_now(
            &p,
            vec![
                labels(&[("a", "good"), ("secret", "s")]),
                labels(&[("a", "bad")]),
                labels(&[("a", "fine")]),
            ],
            &fake,
        )
        .unwrap();
        assert_eq!(
            out,
            [Some(labels(&[("secret", "x")])), None, None],
            "the third set is empty after labeldrop, so dropped"
        );
        let calls = fake.calls.lock().unwrap().clone();
        assert_eq!(calls, [("guard".to_owned(), 3), ("guard".to_owned(), 1)]);
    }

    #[test]
    fn a_failing_or_miscounting_plugin_fails_the_batch() {
        let p = program(r#"[{"action": "plugin", "plugin": "broken"}]"#);
        let err = run_now(&p, vec![labels(&[("a", "1")])], &Fake::default()).unwrap_err();
        assert!(err.contains("broken"), "{err}");
        let p = program(r#"[{"action": "plugin", "plugin": "guard"}]"#);
        let fake = Fake {
            short: true,
            ..Fake::default()
        };
        let err = run_now(
            &p,
            vec![labels(&[("a", "1")]), labels(&[("a", "2")])],
            &fake,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "relabeler plugin \"guard\" answered 1 verdicts for 2 label sets"
        );
    }

    #[test]
    fn native_programs_need_no_plugins() {
        let p = program(
            r#"[{"regex": "a", "action": "labeldrop"}, {"regex": "b", "action": "labeldrop"}]"#,
        );
        assert_eq!(p.native().map(<[_]>::len), Some(2));
        assert_eq!(RelabelProgram::default().native().map(<[_]>::len), Some(0));
        assert_eq!(p.plugins().count(), 0);
    }
}
