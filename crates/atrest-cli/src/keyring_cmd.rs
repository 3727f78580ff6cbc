//! `atrest keyring ...`: each subcommand maps to one `Keyring` operation, then the keyring
//! file is sealed again and atomically replaced.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use atrest_keyring::{
    KeyFileRoot, KeyId, KeyStatus, Keyring, RotationPolicy, Timestamp, VersionState, VersionStatus,
};
use serde_json::json;

use crate::cli::{Global, KeyringCommand};
use crate::failure::{Code, Failure};
use crate::root::{self, Purpose};
use crate::units::{format_duration, format_timestamp};

/// Runs a keyring subcommand.
///
/// # Errors
/// Whatever the operation or the keyring file refuses.
pub(crate) fn run(global: &Global, command: KeyringCommand) -> anyhow::Result<()> {
    match command {
        KeyringCommand::Init { generate_key_file } => init(global, generate_key_file),
        KeyringCommand::Status { json } => status(global, json),
        command => mutate(global, command),
    }
}

fn key_id(name: &str) -> anyhow::Result<KeyId> {
    KeyId::new(name).map_err(|_| {
        Failure::new(
            Code::Usage,
            format!("invalid key name '{name}': it must be 1 to 255 bytes"),
        )
        .into()
    })
}

fn init(global: &Global, generate_key_file: bool) -> anyhow::Result<()> {
    let path = &global.keyring;
    if path.exists() {
        return Err(Failure::new(
            Code::Generic,
            format!("a keyring already exists at {}", path.display()),
        )
        .hint("refusing to overwrite it; choose another path with --keyring")
        .into());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)
            .with_context(|| format!("creating directory {}", parent.display()))?;
    }
    if generate_key_file {
        let key_file = global.key_file.as_ref().ok_or_else(|| {
            Failure::new(Code::Usage, "--generate-key-file needs --key-file PATH")
        })?;
        KeyFileRoot::generate(key_file, atrest_crypto::DEFAULT_PROVIDER)
            .context("generating the root key file")?;
        println!("generated root key file {}", key_file.display());
    }
    let root = root::root_key(global, Purpose::Create)?;
    Keyring::new()
        .save(path, root.as_ref())
        .with_context(|| format!("saving keyring {}", path.display()))?;
    println!("created keyring {} ({} root)", path.display(), root.kind());
    println!("next: atrest keyring create-key NAME");
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn mutate(global: &Global, command: KeyringCommand) -> anyhow::Result<()> {
    let mut loaded = root::load(global)?;
    let keyring = &mut loaded.keyring;
    let now = Timestamp::now();
    // `destroy --now` reports its own destruction; the save would report it again.
    let mut reported = None;
    let message = match command {
        KeyringCommand::CreateKey { name } => {
            keyring.create_key(&key_id(&name)?, now)?;
            format!("created key '{name}' (version 1 is the primary)")
        }
        KeyringCommand::Rotate { key, no_promote } => {
            let id = key_id(&key)?;
            if no_promote {
                let version = keyring.add_version(&id, now)?;
                format!(
                    "key '{key}': added version {version}, not primary yet \
                     (`atrest keyring promote {key} {version}` once every reader has this keyring)"
                )
            } else {
                let version = keyring.rotate(&id, now)?;
                format!("key '{key}': version {version} is now the primary")
            }
        }
        KeyringCommand::RotateDue => {
            let rotated = keyring.rotate_if_due(now)?;
            if rotated.is_empty() {
                "no key is due for rotation".to_owned()
            } else {
                rotated
                    .iter()
                    .map(|(id, version)| {
                        format!("key '{id}': version {version} is now the primary")
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        }
        KeyringCommand::Promote { key, version } => {
            keyring.promote(&key_id(&key)?, version)?;
            format!("key '{key}': version {version} is now the primary")
        }
        KeyringCommand::Disable { key, version } => {
            keyring.disable(&key_id(&key)?, version)?;
            format!("key '{key}' version {version} is disabled")
        }
        KeyringCommand::Enable { key, version } => {
            keyring.enable(&key_id(&key)?, version)?;
            format!("key '{key}' version {version} is enabled")
        }
        KeyringCommand::Restore { key, version } => {
            keyring.restore(&key_id(&key)?, version, now)?;
            format!(
                "key '{key}' version {version}: destruction cancelled; it is disabled \
                 (`atrest keyring enable {key} {version}` to use it again)"
            )
        }
        KeyringCommand::Destroy {
            key,
            version,
            window,
            now: immediately,
            yes,
        } => {
            if immediately {
                reported = Some(format!("{key} v{version}"));
            }
            destroy(keyring, &key, version, window, immediately, yes, now)?
        }
        KeyringCommand::Shred { key, yes } => {
            if !yes {
                return Err(Failure::new(
                    Code::Usage,
                    format!("refusing to shred key '{key}' without --yes"),
                )
                .hint("every version is destroyed at once and everything encrypted under the key becomes unrecoverable; add --yes to confirm")
                .into());
            }
            keyring.shred(&key_id(&key)?)?;
            format!(
                "key '{key}' shredded: every version destroyed, data encrypted under it is unrecoverable"
            )
        }
        KeyringCommand::Policy {
            key,
            max_age,
            clear: _,
        } => {
            let id = key_id(&key)?;
            keyring.set_rotation_policy(&id, max_age.map(RotationPolicy::max_age))?;
            match (max_age, keyring.rotation_due_at(&id)?) {
                (Some(age), Some(due)) => format!(
                    "key '{key}': rotate when the primary is {} old (next due {}; run `atrest keyring rotate-due`)",
                    format_duration(age),
                    format_timestamp(due)
                ),
                _ => format!("key '{key}': rotation policy removed"),
            }
        }
        KeyringCommand::Init { .. } | KeyringCommand::Status { .. } => {
            return Err(anyhow::anyhow!("internal: not a keyring mutation"));
        }
    };
    let destroyed = loaded.save(&global.keyring)?;
    println!("{message}");
    for what in destroyed
        .iter()
        .filter(|what| Some(*what) != reported.as_ref())
    {
        println!(
            "destroyed {what} (its destruction window closed): data under it is unrecoverable"
        );
    }
    Ok(())
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call site, mirrors the command's flags"
)]
fn destroy(
    keyring: &mut Keyring,
    key: &str,
    version: u32,
    window: Duration,
    immediately: bool,
    yes: bool,
    now: Timestamp,
) -> anyhow::Result<String> {
    let id = key_id(key)?;
    if immediately {
        if !yes {
            return Err(Failure::new(
                Code::Usage,
                format!("refusing to destroy key '{key}' version {version} now without --yes"),
            )
            .hint("data encrypted under it becomes unrecoverable; add --yes to confirm, or drop --now to get a restore window")
            .into());
        }
        keyring.schedule_destruction(&id, version, now, Duration::ZERO)?;
        // Saving destroys every version that is due, this one included.
        Ok(format!(
            "key '{key}' version {version} destroyed: data encrypted under it is unrecoverable"
        ))
    } else {
        let at = keyring.schedule_destruction(&id, version, now, window)?;
        Ok(format!(
            "key '{key}' version {version} is scheduled for destruction at {} \
             (`atrest keyring restore {key} {version}` cancels it until then; it is destroyed \
             by the first keyring change after that)",
            format_timestamp(at)
        ))
    }
}

fn status_name(status: VersionStatus) -> String {
    match status {
        VersionStatus::Primary => "primary".into(),
        VersionStatus::Active => "active".into(),
        VersionStatus::DecryptOnly => "decrypt-only".into(),
        VersionStatus::Retired => "retired".into(),
        VersionStatus::Disabled => "disabled".into(),
        VersionStatus::ScheduledForDestruction(at) => {
            format!("destroy at {}", format_timestamp(at))
        }
        VersionStatus::Destroyed => "destroyed".into(),
        _ => "unknown".into(),
    }
}

fn status_id(status: VersionStatus) -> &'static str {
    match status {
        VersionStatus::Primary => "primary",
        VersionStatus::Active => "active",
        VersionStatus::DecryptOnly => "decrypt_only",
        VersionStatus::Retired => "retired",
        VersionStatus::Disabled => "disabled",
        VersionStatus::ScheduledForDestruction(_) => "scheduled_for_destruction",
        VersionStatus::Destroyed => "destroyed",
        _ => "unknown",
    }
}

fn state_name(state: VersionState) -> &'static str {
    match state {
        VersionState::Enabled => "enabled",
        VersionState::Disabled => "disabled",
        VersionState::ScheduledForDestruction { .. } => "scheduled_for_destruction",
        VersionState::Destroyed => "destroyed",
        _ => "unknown",
    }
}

fn status(global: &Global, as_json: bool) -> anyhow::Result<()> {
    let loaded = root::load(global)?;
    let report = loaded.keyring.status();
    if as_json {
        let keys: Vec<_> = report.keys.iter().map(key_json).collect();
        let doc = json!({ "keyring": global.keyring.display().to_string(), "keys": keys });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    if report.keys.is_empty() {
        println!(
            "keyring {}: no keys (create one with `atrest keyring create-key NAME`)",
            global.keyring.display()
        );
        return Ok(());
    }
    let mut rows = vec![[
        "KEY".to_owned(),
        "VERSION".to_owned(),
        "STATUS".to_owned(),
        "CREATED".to_owned(),
    ]];
    for key in &report.keys {
        for version in &key.versions {
            rows.push([
                key.key_id.to_string(),
                version.version.to_string(),
                status_name(version.status),
                format_timestamp(version.created_at),
            ]);
        }
    }
    let widths: Vec<usize> = (0..4)
        .map(|col| rows.iter().map(|row| row[col].len()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        println!("{}", line.trim_end());
    }
    for key in &report.keys {
        if key.shredded {
            println!("{}: shredded", key.key_id);
        }
        if let (Some(policy), Some(due)) = (key.rotation_policy, key.rotation_due_at) {
            println!(
                "{}: rotate every {}, next due {}",
                key.key_id,
                format_duration(policy.max_primary_age()),
                format_timestamp(due)
            );
        }
    }
    Ok(())
}

fn key_json(key: &KeyStatus) -> serde_json::Value {
    let versions: Vec<_> = key
        .versions
        .iter()
        .map(|v| {
            let destroy_at = match v.status {
                VersionStatus::ScheduledForDestruction(at) => Some(format_timestamp(at)),
                _ => None,
            };
            json!({
                "version": v.version,
                "created_at": format_timestamp(v.created_at),
                "state": state_name(v.state),
                "status": status_id(v.status),
                "can_decrypt": v.status.can_decrypt(),
                "destroy_at": destroy_at,
            })
        })
        .collect();
    json!({
        "key": key.key_id.as_str(),
        "created_at": format_timestamp(key.created_at),
        "primary": key.primary,
        "min_encryption_version": key.min_encryption_version,
        "min_decryption_version": key.min_decryption_version,
        "rotation_max_age_secs": key.rotation_policy.map(|p| p.max_primary_age().as_secs()),
        "rotation_due_at": key.rotation_due_at.map(format_timestamp),
        "shredded": key.shredded,
        "versions": versions,
    })
}
