//! Key files readable by the owner only (0600): the JWT signing key forges any
//! session, the secrets keyring decrypts every stored secret.

use async_trait::async_trait;
use palisade_core::severity::Severity;
use serde::Serialize;

use crate::posture::{CheckContext, Finding, PostureCheck};

/// The check.
pub struct KeyFiles;

#[derive(Serialize)]
struct Seen {
    name: String,
    path: String,
    mode: Option<String>,
    note: &'static str,
}

#[async_trait]
impl PostureCheck for KeyFiles {
    fn id(&self) -> &'static str {
        "key_files"
    }

    fn title(&self) -> &'static str {
        "Key files are private (0600)"
    }

    fn severity(&self) -> Severity {
        Severity::Critical
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Finding {
        let checked = "the permissions of the JWT signing key and the secrets keyring files";
        if !cfg!(unix) {
            return Finding::not_applicable(checked, "file modes exist on Unix only");
        }
        let files = ctx.facts.key_files();
        let mut seen = Vec::new();
        let mut open = Vec::new();
        for f in &files {
            let path = f.path.display().to_string();
            if f.from_environment {
                seen.push(Seen {
                    name: f.name.clone(),
                    path,
                    mode: None,
                    note: "key from the environment; file not used",
                });
                continue;
            }
            match mode_of(&f.path) {
                Ok(mode) => {
                    if mode & 0o077 != 0 {
                        open.push(format!("{} {path} is {mode:04o}", f.name));
                    }
                    seen.push(Seen {
                        name: f.name.clone(),
                        path,
                        mode: Some(format!("{mode:04o}")),
                        note: if mode & 0o077 != 0 {
                            "readable by others"
                        } else {
                            "owner only"
                        },
                    });
                }
                Err(error) => open.push(format!("{} {path} cannot be checked ({error})", f.name)),
            }
        }
        let finding = if files.is_empty() {
            Finding::not_applicable(checked, "no key file is configured")
        } else if open.is_empty() {
            Finding::pass(checked, "every key file is readable by its owner only")
        } else {
            Finding::fail(
                checked,
                open.join("; "),
                "chmod 600 the files named (and 700 their data directory); Palisade creates \
                 them so, a copy or a restore may not have kept it",
            )
        };
        finding.with_detail(&seen)
    }
}

#[cfg(unix)]
fn mode_of(path: &std::path::Path) -> std::io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn mode_of(_: &std::path::Path) -> std::io::Result<u32> {
    Ok(0o600)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::posture::checks::testing::{Fixed, run};
    use crate::posture::facts::KeyFileFacts;
    use palisade_core::posture::CheckStatus;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn a_key_readable_by_others_fails() {
        let dir = tempfile::tempdir().unwrap();
        let jwt = dir.path().join("jwt.key");
        std::fs::write(&jwt, "k").unwrap();
        std::fs::set_permissions(&jwt, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut f = Fixed {
            key_files: vec![
                KeyFileFacts {
                    name: "JWT signing key".into(),
                    path: jwt.clone(),
                    from_environment: false,
                },
                KeyFileFacts {
                    name: "secrets keyring".into(),
                    path: dir.path().join("absent"),
                    from_environment: true,
                },
            ],
            ..Fixed::default()
        };
        assert_eq!(run(&KeyFiles, &f, false).await.status, CheckStatus::Pass);
        std::fs::set_permissions(&jwt, std::fs::Permissions::from_mode(0o644)).unwrap();
        let x = run(&KeyFiles, &f, false).await;
        assert_eq!(x.status, CheckStatus::Fail);
        assert!(x.found.contains("0644"), "{}", x.found);
        f.key_files[1].from_environment = false;
        let x = run(&KeyFiles, &f, false).await;
        assert!(x.found.contains("cannot be checked"), "{}", x.found);
    }
}
