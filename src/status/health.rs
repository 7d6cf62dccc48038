//! The `health` command: reads the status file, checks that the daemon's process is alive,
//! and applies the pure verdict from `model`. Does file and `/proc` I/O.

use std::io;
use std::path::Path;
use std::time::Duration;

use super::model::{
    evaluate, summarize, StatusReport, DEFAULT_HEALTH_GRACE, DEFAULT_MAX_STATUS_AGE,
};

/// Whether process `pid` exists, by looking for `/proc/<pid>`; `None` where there is no
/// `/proc` to ask (not Linux), so the caller can skip the check rather than guess.
///
/// It only means something in the daemon's PID namespace: run `health` inside the same
/// container as the daemon (which is what Docker's HEALTHCHECK does).
pub fn process_is_running(pid: u32) -> Option<bool> {
    if !Path::new("/proc/self").exists() {
        return None;
    }
    Some(pid != 0 && Path::new("/proc").join(pid.to_string()).exists())
}

/// The `health` command: reads the status file, checks the daemon's process is alive, and
/// evaluates the report with [`DEFAULT_HEALTH_GRACE`] and [`DEFAULT_MAX_STATUS_AGE`].
/// `Ok` is a summary for stdout (exit 0), `Err` the reason for stderr (exit 1).
pub fn run_health(status_path: &Path, now_unix: u64) -> Result<String, String> {
    run_health_with(
        status_path,
        now_unix,
        DEFAULT_HEALTH_GRACE,
        DEFAULT_MAX_STATUS_AGE,
    )
}

/// [`run_health`] with the grace period and the allowed file age given, for tests and for
/// settings that override them.
pub fn run_health_with(
    status_path: &Path,
    now_unix: u64,
    grace: Duration,
    max_age: Duration,
) -> Result<String, String> {
    let text = match std::fs::read_to_string(status_path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(format!(
                "no status file at {}: the daemon is not running, or it writes its status \
                 elsewhere (--status-file, TWITCH_STATUS_FILE)",
                status_path.display()
            ))
        }
        Err(error) => {
            return Err(format!(
                "cannot read the status file {}: {error}",
                status_path.display()
            ))
        }
    };
    let report: StatusReport = serde_json::from_str(&text).map_err(|error| {
        format!(
            "cannot understand the status file {}: {error}",
            status_path.display()
        )
    })?;
    if process_is_running(report.pid) == Some(false) {
        return Err(format!(
            "the daemon (pid {}) is not running; its status file {} was left behind",
            report.pid,
            status_path.display()
        ));
    }
    evaluate(&report, now_unix, grace, max_age)?;
    Ok(summarize(&report, now_unix))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::status::model::UserState;

    #[test]
    fn this_process_is_running_and_an_impossible_pid_is_not() {
        if process_is_running(std::process::id()).is_none() {
            return; // No /proc on this system.
        }
        assert_eq!(process_is_running(std::process::id()), Some(true));
        // Linux pids never exceed 2^22, so this pid cannot exist.
        assert_eq!(process_is_running(u32::MAX), Some(false));
        assert_eq!(process_is_running(0), Some(false));
    }

    fn write_report_file(path: &Path, report: &StatusReport) {
        std::fs::write(path, serde_json::to_vec(report).unwrap()).unwrap();
    }

    /// Name, file contents (`None`: no file), and how the summary or reason starts.
    type HealthCase = (
        &'static str,
        Option<Vec<u8>>,
        Result<&'static str, &'static str>,
    );

    #[test]
    fn run_health_table() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("twitch_colorchanger.status.json");
        let alive = std::process::id();
        let has_proc = process_is_running(alive).is_some();
        let with_pid = |pid: u32, mut report: StatusReport| {
            report.pid = pid;
            report
        };
        let cases: Vec<HealthCase> = vec![
            ("missing file", None, Err("no status file at")),
            (
                "not JSON",
                Some(b"{\"pid\": ".to_vec()),
                Err("cannot understand the status file"),
            ),
            (
                "healthy",
                Some(
                    serde_json::to_vec(&with_pid(alive, report(NOW, &[("alice", connected())])))
                        .unwrap(),
                ),
                Ok("healthy: 1 user connected"),
            ),
            (
                "alive but a user needs login",
                Some(
                    serde_json::to_vec(&with_pid(
                        alive,
                        report(
                            NOW,
                            &[(
                                "alice",
                                UserState::NeedsLogin {
                                    reason: "gone".into(),
                                    login_code: None,
                                },
                            )],
                        ),
                    ))
                    .unwrap(),
                ),
                Err("alice needs a new login: gone"),
            ),
            (
                "dead pid with a fresh, healthy report",
                Some(
                    serde_json::to_vec(&with_pid(u32::MAX, report(NOW, &[("alice", connected())])))
                        .unwrap(),
                ),
                if has_proc {
                    Err("the daemon (pid 4294967295) is not running")
                } else {
                    Ok("healthy")
                },
            ),
        ];
        for (name, contents, expected) in cases {
            let _ = std::fs::remove_file(&path);
            if let Some(contents) = contents {
                std::fs::write(&path, contents).unwrap();
            }
            let result = run_health(&path, NOW);
            match (&result, expected) {
                (Ok(summary), Ok(start)) => {
                    assert!(summary.starts_with(start), "{name}: {summary}")
                }
                (Err(reason), Err(start)) => assert!(reason.starts_with(start), "{name}: {reason}"),
                _ => panic!("{name}: expected {expected:?}, got {result:?}"),
            }
        }
        write_report_file(&path, &with_pid(alive, report(NOW - 1000, &[])));
        assert!(run_health(&path, NOW).unwrap_err().contains("hung or gone"));

        // The grace period and the allowed age can be shortened.
        write_report_file(
            &path,
            &with_pid(alive, report(NOW - 5, &[("alice", reconnecting(20))])),
        );
        assert!(run_health(&path, NOW).is_ok());
        let short = Duration::from_secs(10);
        let reason = run_health_with(&path, NOW, short, MAX_AGE).unwrap_err();
        assert_eq!(
            reason,
            "alice has been reconnecting for 20 s: connection refused"
        );
        let reason = run_health_with(&path, NOW, GRACE, Duration::from_secs(1)).unwrap_err();
        assert!(reason.contains("hung or gone"), "{reason}");
    }
}
