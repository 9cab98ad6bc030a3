//! Log output for every subcommand: an `EnvFilter` (`VOLTPLAN_LOG` wins over the subcommand's
//! default), ANSI colours only on a terminal and never with `NO_COLOR`, and a timestamp from the
//! injected clock when the subcommand runs on simulated time (the demo).

use chrono::SecondsFormat;
use chrono_tz::Tz;
use std::io::IsTerminal;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::util::SubscriberInitExt;
use voltplan_core::Clock;

/// The filter of every subcommand but the demo.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// How a subcommand wants its logs.
pub struct LogSetup {
    /// Used when `VOLTPLAN_LOG` is unset or invalid.
    pub default_filter: &'static str,
    /// Stamp lines with this clock's time in this zone instead of the system time (UTC).
    pub clock: Option<(Arc<dyn Clock>, Tz)>,
}

impl Default for LogSetup {
    fn default() -> Self {
        Self {
            default_filter: DEFAULT_FILTER,
            clock: None,
        }
    }
}

/// The time a line is stamped with: the system time in UTC (tracing's default), or an injected
/// clock's in a zone, RFC 3339 with the zone's offset, to the second.
struct Stamp(Option<(Arc<dyn Clock>, Tz)>);

impl FormatTime for Stamp {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        match &self.0 {
            Some((clock, zone)) => {
                let local = clock.now().with_timezone(zone);
                write!(w, "{}", local.to_rfc3339_opts(SecondsFormat::Secs, false))
            }
            None => SystemTime.format_time(w),
        }
    }
}

/// Colours only for a terminal, and never when `NO_COLOR` is set to anything but the empty string
/// (<https://no-color.org>).
pub fn use_ansi(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// The subscriber for `setup`; `filter` is the value of `VOLTPLAN_LOG` (a default when unset or
/// invalid).
fn subscriber<W>(
    setup: LogSetup,
    filter: Option<&str>,
    ansi: bool,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = filter
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(setup.default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_timer(Stamp(setup.clock))
        .finish()
}

/// Installs the logger: stderr, `VOLTPLAN_LOG` over `setup.default_filter`, colours per
/// [`use_ansi`].
pub fn init(setup: LogSetup) {
    let ansi = use_ansi(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let filter = std::env::var("VOLTPLAN_LOG").ok();
    let subscriber = subscriber(setup, filter.as_deref(), ansi, std::io::stderr);
    // `try_init` also forwards the `log` crate's records (tracing-log), as `fmt().init()` did.
    if let Err(e) = subscriber.try_init() {
        eprintln!("logging is already set up: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use std::ffi::OsStr;
    use std::sync::Mutex;
    use voltplan_core::ManualClock;

    #[test]
    fn colours_need_a_terminal_and_no_no_color() {
        assert!(use_ansi(true, None));
        assert!(
            use_ansi(true, Some(OsStr::new(""))),
            "an empty NO_COLOR is unset"
        );
        assert!(!use_ansi(true, Some(OsStr::new("1"))));
        assert!(!use_ansi(false, None), "redirected to a file or a pipe");
    }

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    /// What the demo's logger writes for a few typical events, with `VOLTPLAN_LOG` = `filter`.
    fn demo_log(filter: Option<&str>, ansi: bool) -> String {
        let at = Utc.with_ymd_and_hms(2025, 6, 3, 19, 0, 5).single().unwrap();
        let setup = LogSetup {
            default_filter: crate::demo::LOG_FILTER,
            clock: Some((Arc::new(ManualClock::new(at)), chrono_tz::Europe::Vienna)),
        };
        let out = Captured::default();
        let subscriber = subscriber(setup, filter, ansi, out.clone());
        tracing::subscriber::with_default(subscriber, || {
            let cycle =
                tracing::info_span!(target: "voltplan_worker", "vehicle_cycle", vehicle_id = 7);
            let _entered = cycle.enter();
            tracing::info!(target: "voltplan_worker::steer", key = "k1", "command accepted");
            tracing::warn!(target: "voltplan_worker::steer", "steering keeps failing");
            tracing::info!(target: "voltplan_worker::boost", "boost taken up");
            tracing::info!(target: "voltplan::demo", "a demo message");
            tracing::debug!(target: "voltplan::demo", "a demo detail");
        });
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn the_demo_logs_warnings_and_its_own_lines_in_simulated_time_without_command_chatter() {
        let log = demo_log(None, false);
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 3, "{log}");
        assert!(
            lines
                .iter()
                .all(|l| l.starts_with("2025-06-03T21:00:05+02:00 ")),
            "{log}"
        );
        assert!(lines[0].contains("WARN") && lines[0].contains("steering keeps failing"));
        assert!(
            lines[0].contains("vehicle_id=7"),
            "a warning names its vehicle: {log}"
        );
        assert!(lines[1].contains("boost taken up"));
        assert!(lines[2].contains("a demo message"));
        assert!(!log.contains("command accepted") && !log.contains('\u{1b}'));

        let everything = demo_log(Some("info"), false);
        assert!(everything.contains("command accepted"), "VOLTPLAN_LOG wins");
        assert!(
            demo_log(None, true).contains('\u{1b}'),
            "colours when asked for"
        );
    }

    #[test]
    fn other_commands_stamp_the_system_time_in_utc() {
        let mut out = String::new();
        Stamp(None).format_time(&mut Writer::new(&mut out)).unwrap();
        let stamp: chrono::DateTime<Utc> = out.parse().unwrap();
        assert!((Utc::now() - stamp).num_seconds().abs() < 60, "{out}");
    }
}
