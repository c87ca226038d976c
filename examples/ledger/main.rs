//! Ledger: tables, a table aggregation, a stream-table join, a foreign-key join, a windowed
//! count emitted when its windows close and a stream-stream join, on Kafka.
//!
//! ```text
//! ledger --bootstrap HOST:PORT --app-id ID [--state-dir DIR] [--lanes N] [--exit-when-idle SECS]
//! ```
//!
//! Reads `<ID>-accounts` as a table (key: account id; value: JSON `{"region", "balance"}`; a
//! tombstone closes the account), `<ID>-regions` as a table (key: region; value: its manager)
//! `<ID>-payments` as a stream (key: account id; value: a payment id) and `<ID>-confirmations` as
//! a stream (key: payment id; value: a confirmation id). Writes:
//! - `<ID>-region-totals`: per region, JSON `{"sum", "count"}` of its accounts' balances, updated
//!   as accounts open, change, move between regions and close;
//! - `<ID>-receipts`: per payment, `"<payment id> <region>"` (`-` for an unknown account);
//! - `<ID>-account-managers`: per account, `"<region> <manager>"` while its region has a manager,
//!   a tombstone when it stops having one (the account closes, moves, or the region's manager
//!   goes);
//! - `<ID>-payments-per-second`: per account and second of event time, the number of payments,
//!   once, when the second has closed (five minutes of grace); keys are Kafka Streams' time-windowed
//!   keys (the account id, then the window start as 8 big-endian bytes), values 8-byte counts;
//! - `<ID>-payment-status`: per payment, its confirmation id if one came within 30 s of event
//!   time, else `unconfirmed` once a minute of grace has passed too;
//! - `<ID>-follow-ups`: per account, a follow-up 5 s of event time after each of its payments
//!   (one per account and instant), from a timer; values are the time, 8 bytes big-endian;
//! - `<ID>-ticks`: a record every second of wall clock, from a schedule (key `clock`, value the
//!   instant, 8 bytes big-endian);
//! - `<ID>-risk-scores`: per payment (key: account id), `"<payment id> <score>"` from a risk
//!   service called asynchronously (1-3 ms of simulated network time each, 32 calls in flight
//!   per lane);
//! - `<ID>-account-risk`: per account, the running sum of its payments' scores (8 bytes
//!   big-endian), kept in state after the async call.
//!
//! Exactly-once, until SIGTERM/SIGINT or, with `--exit-when-idle`, until idle that long. The crash
//! tests SIGKILL it at random moments.

use std::process::ExitCode;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stoat::prelude::*;

/// An account, as the accounts topic holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub region: String,
    pub balance: i64,
}

/// A region's aggregate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub sum: i64,
    pub count: i64,
}

const ACCOUNTS: Topic<String, Account> = Topic::json("accounts");
const PAYMENTS: Topic<String, String> = Topic::new("payments");
const TOTALS: Topic<String, Totals> = Topic::json("region-totals");
const REGIONS: Topic<String, String> = Topic::new("regions");

/// Sets a timer 5 s after each payment; when it fires, emits its time.
struct FollowUp;

#[stoat::operator]
impl FollowUp {
    fn payment(
        &self,
        #[key] _account: &String,
        _payment: &str,
        ctx: &Context,
        timers: &mut Timers,
    ) -> Result<Option<i64>, StoreError> {
        timers.at(ctx.timestamp() + 5_000)?;
        Ok(None)
    }

    #[on_timer]
    fn follow_up(&self, #[key] _account: &String, timer: Timer) -> i64 {
        timer.time()
    }
}

/// A stand-in for a remote risk service: answers after 1-3 ms of simulated network time.
struct RiskService;

impl RiskService {
    async fn score(&self, payment: &str) -> u64 {
        tokio::time::sleep(Duration::from_millis(1 + payment.len() as u64 % 3)).await;
        risk_of(payment)
    }
}

/// The risk score of a payment id (the crash test computes it too).
pub fn risk_of(payment: &str) -> u64 {
    payment.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) % 100
}

#[stoat::operator(concurrency = 32, timeout = "5s")]
async fn assess(payment: String, risk: &Res<RiskService>) -> String {
    let score = risk.score(&payment).await;
    format!("{payment} {score}")
}

#[stoat::state]
struct RiskTotals {
    per_account: Table<String, u64>,
}

#[stoat::operator]
fn risk_total(#[key] account: &str, assessed: &str, totals: &mut RiskTotals) -> Result<u64, StoreError> {
    let score: u64 = assessed.rsplit(' ').next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let sum = totals.per_account.get(account)?.unwrap_or(0) + score;
    totals.per_account.put(account.to_owned(), sum)?;
    Ok(sum)
}

fn topology(app: &str) -> Topology {
    let topology = Topology::new(app);
    topology.provide(RiskService);
    let accounts = topology.table(&ACCOUNTS.renamed(format!("{app}-accounts")), "accounts");
    accounts
        .group_by(|_, a| (a.region.clone(), a.balance))
        .aggregate(
            "region_totals",
            || Totals { sum: 0, count: 0 },
            |_, balance, t| Totals { sum: t.sum + balance, count: t.count + 1 },
            |_, balance, t| Totals { sum: t.sum - balance, count: t.count - 1 },
        )
        .sink(&TOTALS.renamed(format!("{app}-region-totals")));
    let payments = topology.source(&PAYMENTS.renamed(format!("{app}-payments")));
    payments
        .left_join(&accounts, |payment, a: Option<Account>| {
            format!("{payment} {}", a.map_or_else(|| "-".to_string(), |a| a.region))
        })
        .to(&format!("{app}-receipts"));
    let regions = topology.table(&REGIONS.renamed(format!("{app}-regions")), "regions");
    accounts
        .join_foreign_key(
            &regions,
            "accounts_by_region",
            |_, a| Some(a.region.clone()),
            |a, manager| format!("{} {manager}", a.region),
        )
        .to(&format!("{app}-account-managers"));
    let second = Duration::from_secs(1);
    payments
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(second, Duration::from_secs(300)))
        .emit_on_window_close()
        .count("payments_per_second")
        .to_with(&format!("{app}-payments-per-second"), TimeWindowed::new(Utf8, second), Binary::default());
    let confirmations = topology.stream::<String, String>(&format!("{app}-confirmations"));
    payments
        .key_by(|_, payment| payment.clone())
        .left_join_stream(
            &confirmations,
            JoinWindows::of_time_difference_and_grace(Duration::from_secs(30), Duration::from_secs(60)),
            "payment_confirmations",
            |_, confirmation: Option<String>| confirmation.unwrap_or_else(|| "unconfirmed".into()),
        )
        .to(&format!("{app}-payment-status"));
    payments.process(FollowUp).to(&format!("{app}-follow-ups"));
    topology.schedule("clock", Schedule::every(Duration::from_secs(1))).to(&format!("{app}-ticks"));
    let assessed = payments.process(assess {});
    assessed.to(&format!("{app}-risk-scores"));
    assessed.process(risk_total {}).to(&format!("{app}-account-risk"));
    topology
}

struct Args {
    bootstrap: String,
    app_id: String,
    config: Config,
    idle: Option<Duration>,
}

fn parse_args() -> Result<Args, String> {
    let mut raw = std::env::args().skip(1);
    let (mut bootstrap, mut app_id, mut config, mut idle) = (None, None, Config::default(), None);
    let mut value = |flag: &str| raw.next().ok_or(format!("{flag} needs a value"));
    while let Ok(flag) = value("") {
        match flag.as_str() {
            "--bootstrap" => bootstrap = Some(value("--bootstrap")?),
            "--app-id" => app_id = Some(value("--app-id")?),
            "--state-dir" => config = config.state_dir(value("--state-dir")?),
            "--lanes" => {
                let n = value("--lanes")?;
                config = config.lanes(n.parse().map_err(|_| format!("--lanes: `{n}` is not a number"))?);
            }
            "--exit-when-idle" => {
                let s = value("--exit-when-idle")?;
                let secs: f64 = s.parse().map_err(|_| format!("--exit-when-idle: `{s}` is not a number"))?;
                idle = Some(Duration::from_secs_f64(secs.max(0.0)));
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(Args {
        bootstrap: bootstrap.ok_or("--bootstrap is required")?,
        app_id: app_id.ok_or("--app-id is required")?,
        config,
        idle,
    })
}

fn run(args: Args) -> stoat::Result<stoat::RunStats> {
    let mut app = App::kafka(&topology(&args.app_id), args.config, KafkaConfig::new(args.bootstrap))?;
    let shutdown = app.shutdown_on_signals()?;
    if let Some(idle) = args.idle {
        app.stop_when_idle(&shutdown, idle);
    }
    app.run_until_stopped(&shutdown)
}

fn main() -> ExitCode {
    stoat::logging::init();
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("ledger: {e}\nusage: ledger --bootstrap HOST:PORT --app-id ID [--state-dir DIR] [--lanes N] [--exit-when-idle SECS]");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(stats) => {
            tracing::info!(?stats, "ledger stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ledger: {e}");
            ExitCode::FAILURE
        }
    }
}
