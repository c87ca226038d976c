//! [`App`]: a topology running on a log with its LMDB state. It owns the tokio runtime its lanes
//! run on, and is driven either from synchronous code (`run_until_idle`, `run_until_stopped`) or
//! from async code on any tokio runtime (`run`, `run_until_idle_async`). An [`AppHandle`] reads
//! committed state and statistics and stops the app while it runs. The embedded default needs no
//! broker.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::commit::{Engine, Shutdown};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::log::{EmbeddedLog, Log};
#[cfg(feature = "kafka")]
use crate::log::{KafkaConfig, KafkaLog};
use crate::state::{StateEnv, StateSet, StateWriter};
use crate::stats::{RunStats, Stats};
use crate::status::{Phase, Status};
use crate::topology::{Program, Topology};

/// A running stoat application.
pub struct App {
    // Field order is drop order: the engine stops before the runtime that runs its lanes.
    engine: Engine,
    runtime: OwnedRuntime,
    program: Arc<Program>,
    state: StateEnv,
    stats: Arc<Stats>,
    log: Arc<dyn Log>,
    embedded: Option<Arc<EmbeddedLog>>,
    /// The app's own stop request, shared with its handles and signal listeners.
    shutdown: Shutdown,
    status: Arc<Status>,
    /// Where the HTTP endpoints listen, when they do.
    http: Option<std::net::SocketAddr>,
    _temp: Option<tempfile::TempDir>,
}

/// A cloneable handle on an [`App`]: reads committed state and statistics, and stops the app,
/// from any thread or task while the app runs.
#[derive(Clone, Debug)]
pub struct AppHandle {
    state: StateEnv,
    stores: Arc<[crate::state::StoreSpec]>,
    stats: Arc<Stats>,
    shutdown: Shutdown,
    status: Arc<Status>,
}

impl AppHandle {
    /// What the app has done so far.
    pub fn stats(&self) -> RunStats {
        self.stats.snapshot()
    }

    /// Reads committed state: `f` gets a fresh instance of the state struct `S`.
    pub fn read_state<S: StateSet, R>(&self, f: impl FnOnce(&S) -> R) -> Result<R> {
        read_state(&self.state, f)
    }

    /// How many entries the state store `store` holds, as of the last committed epoch (an
    /// unknown name is [`StoreError::Unknown`](crate::error::StoreError::Unknown)).
    pub fn store_entries(&self, store: &str) -> Result<u64> {
        Ok(self.state.entries(store)?)
    }

    /// Reads store `name`'s committed state as `K` to `V`: a `#[stoat::state]` table or a DSL
    /// store (`count("counts")` is a store of the key type to `u64`). The same reads the HTTP
    /// store endpoints serve, typed.
    pub fn store<K: crate::state::StoreKey, V: crate::state::StoreValue>(
        &self,
        name: &str,
    ) -> Result<crate::state::StoreReader<K, V>> {
        crate::state::StoreReader::open(&self.state, &self.stores, name)
    }

    /// Asks the app to stop: `App::run` and `App::run_until_stopped` with this app's stop
    /// request commit the open epoch and return.
    pub fn stop(&self) {
        self.shutdown.trigger();
    }

    /// The app's stop request.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// What the app is doing: its phase, last commit, committed input positions.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Stops reading input until [`AppHandle::resume`]: the open epoch commits what it has.
    pub fn pause(&self) {
        self.status.pause();
    }

    /// Resumes reading input.
    pub fn resume(&self) {
        self.status.resume();
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("program", &self.program).field("state", &self.state).finish()
    }
}

impl App {
    /// Runs `topology` on a fresh embedded log (no broker).
    pub fn embedded(topology: &Topology, config: Config) -> Result<App> {
        App::embedded_on(topology, config, Arc::new(EmbeddedLog::default()))
    }

    /// Runs `topology` on an existing embedded log, connected with its app id: it reads from
    /// the offsets that app id committed there, and fences an earlier app of the same id.
    pub fn embedded_on(topology: &Topology, config: Config, log: Arc<EmbeddedLog>) -> Result<App> {
        let session = Arc::new(log.connect(topology.app()));
        let mut app = App::with_log(topology, config, session as Arc<dyn Log>)?;
        app.embedded = Some(log);
        Ok(app)
    }

    /// Runs `topology` on `log`.
    pub fn with_log(topology: &Topology, config: Config, log: Arc<dyn Log>) -> Result<App> {
        App::build(topology, config, None, |_, _| Ok(log))
    }

    /// Runs `topology` on `log` as an app that `switch` crashes (the crash test): its log calls
    /// and state commits fail from the crash on.
    pub(crate) fn crashing_on(
        topology: &Topology,
        config: Config,
        log: Arc<EmbeddedLog>,
        switch: Arc<crate::testing::crash::CrashSwitch>,
    ) -> Result<App> {
        let session = Arc::new(log.connect(topology.app())) as Arc<dyn Log>;
        let crashing = crate::testing::crash::CrashLog { inner: session, switch: Arc::clone(&switch) };
        let mut app =
            App::build(topology, config, Some(switch), |_, _| Ok(Arc::new(crashing) as Arc<dyn Log>))?;
        app.embedded = Some(log);
        Ok(app)
    }

    /// Runs `topology` on Apache Kafka (cargo feature `kafka`, on by default): one consumer assigned every input partition, one
    /// producer, one transaction per epoch under exactly-once, a compacted changelog per store.
    #[cfg(feature = "kafka")]
    pub fn kafka(topology: &Topology, config: Config, kafka: KafkaConfig) -> Result<App> {
        App::build(topology, config, None, |program, runtime| {
            let stores: Vec<&str> = program.stores().iter().map(|s| s.name).collect();
            // On a thread of its own, so that `App::kafka` works in async code too (blocking
            // on a runtime from inside another one panics).
            std::thread::scope(|scope| {
                scope
                    .spawn(|| runtime.block_on(KafkaLog::connect(program.app(), &stores, kafka)))
                    .join()
                    .unwrap_or_else(|_| Err(Error::Runtime("connecting to Kafka panicked".into())))
            })
            .map(|log| Arc::new(log) as Arc<dyn Log>)
        })
    }

    fn build(
        topology: &Topology,
        config: Config,
        crash: Option<Arc<crate::testing::crash::CrashSwitch>>,
        connect: impl FnOnce(&Program, &tokio::runtime::Runtime) -> Result<Arc<dyn Log>>,
    ) -> Result<App> {
        config.validate()?;
        let program = Arc::new(topology.build()?);
        let (dir, temp) = match &config.state_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let temp = tempfile::Builder::new().prefix("stoat-state-").tempdir().map_err(|source| {
                    Error::Io { what: "cannot create a temporary state directory".into(), cause: source }
                })?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let readers = StateEnv::readers_for(config.lanes, program.stores().len());
        let state = StateEnv::open(
            &dir,
            program.app(),
            program.stores(),
            config.state_map_size,
            readers,
            config.rebuild_foreign_state,
        )?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads)
            .thread_name("stoat-worker")
            .enable_all()
            .build()
            .map_err(|source| Error::Io { what: "cannot start the tokio runtime".into(), cause: source })?;
        let log = connect(&program, &runtime)?;
        let stats = Arc::new(Stats::default());
        let status = Arc::new(Status::default());
        let http = match config.http {
            Some(addr) => Some(serve_http(addr, &config, &program, &state, &log, &stats, &status, &runtime)?),
            None => None,
        };
        if log.keeps_changelogs() {
            status.set_phase(Phase::Restoring);
        }
        // Where the log keeps the changelogs, LMDB flushes periodically, not at every commit.
        let sync_every = (log.keeps_changelogs() && !config.state_sync_interval.is_zero())
            .then_some(config.state_sync_interval);
        let mut writer = StateWriter::start(state.clone(), sync_every)?;
        if let Some(switch) = crash {
            writer = writer.with_crash(switch);
        }
        let restored = crate::commit::restore(
            log.as_ref(),
            &state,
            &writer,
            program.stores(),
            config.rebuild_foreign_state,
        )?;
        stats.restored(restored);
        let engine = {
            let _guard = runtime.enter();
            Engine::start(
                Arc::clone(&program),
                config,
                Arc::clone(&log),
                state.clone(),
                writer,
                Arc::clone(&stats),
                Arc::clone(&status),
            )?
        };
        status.set_phase(Phase::Starting);
        Ok(App {
            engine,
            runtime: OwnedRuntime(std::mem::ManuallyDrop::new(runtime)),
            program,
            state,
            stats,
            log,
            embedded: None,
            shutdown: Shutdown::new(),
            status,
            http,
            _temp: temp,
        })
    }

    /// Where the HTTP endpoints listen (`Config::http`), if they do.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http
    }

    /// What the app is doing: its phase, last commit, committed input positions.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Marks the app running while `run` goes, and stopped or failed after.
    fn running<T>(status: &Status, run: Result<T>) -> Result<T> {
        match &run {
            Ok(_) => status.set_phase(Phase::Stopped),
            Err(e) => status.failed(&e.to_string()),
        }
        run
    }

    /// A handle that reads state and statistics and stops the app while it runs.
    pub fn handle(&self) -> AppHandle {
        AppHandle {
            state: self.state.clone(),
            stores: self.program.stores().into(),
            stats: Arc::clone(&self.stats),
            shutdown: self.shutdown.clone(),
            status: Arc::clone(&self.status),
        }
    }

    /// Makes SIGTERM and SIGINT (Ctrl-C) trigger the app's stop request, which it returns: the
    /// open epoch is committed within `Config::shutdown_timeout`. A second signal exits the
    /// process at once (status 130), committing nothing more: a restart goes on from the last
    /// commit.
    pub fn shutdown_on_signals(&self) -> Result<Shutdown> {
        use tokio::signal::unix::{signal, SignalKind};
        let shutdown = self.shutdown.clone();
        let _guard = self.runtime.enter();
        let io = |source| Error::Io { what: "cannot listen for signals".into(), cause: source };
        let mut term = signal(SignalKind::terminate()).map_err(io)?;
        let mut int = signal(SignalKind::interrupt()).map_err(io)?;
        let trigger = shutdown.clone();
        self.runtime.spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping after the open epoch"),
                _ = int.recv() => tracing::info!("SIGINT: stopping after the open epoch"),
            }
            trigger.trigger();
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::warn!("a second signal: exiting now; the open epoch is not committed (a restart goes on from the last commit)");
            std::process::exit(130);
        });
        Ok(shutdown)
    }

    /// Triggers `shutdown` once the app has read everything available and nothing new for
    /// `idle`.
    pub fn stop_when_idle(&self, shutdown: &Shutdown, idle: Duration) {
        let stats = Arc::clone(&self.stats);
        let log = Arc::clone(&self.log);
        let trigger = shutdown.clone();
        self.runtime.spawn(async move {
            let mut seen = stats.snapshot().records_in;
            let mut since = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let now = stats.snapshot().records_in;
                if now != seen {
                    seen = now;
                    since = tokio::time::Instant::now();
                } else if since.elapsed() >= idle {
                    let log = Arc::clone(&log);
                    match tokio::task::spawn_blocking(move || log.caught_up()).await {
                        Ok(Ok(true)) => {
                            tracing::info!(?idle, "idle and caught up: stopping");
                            trigger.trigger();
                            return;
                        }
                        Ok(Ok(false)) => tracing::info!("idle but input remains: waiting"),
                        Ok(Err(e)) => tracing::warn!(error = %e, "cannot tell whether the input is consumed"),
                        Err(e) => tracing::warn!(error = %e, "idle check failed"),
                    }
                    since = tokio::time::Instant::now();
                }
            }
        });
    }

    /// The embedded log, when the app runs on one.
    pub fn embedded_log(&self) -> Option<&Arc<EmbeddedLog>> {
        self.embedded.as_ref()
    }

    /// The compiled topology.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The app's state environment.
    pub(crate) fn state_env(&self) -> &StateEnv {
        &self.state
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// Processes all available input, commits, and returns.
    pub fn run_until_idle(&mut self) -> Result<RunStats> {
        self.status.set_phase(Phase::Running);
        let run = self.runtime.block_on(self.engine.run_until_idle());
        App::running(&self.status, run)?;
        Ok(self.stats())
    }

    /// Moves event time (stream time or the watermark) of every source group on to at least
    /// `to` and processes: windows it closes are emitted, stream-time timers it reaches fire.
    /// Partition times committed with the input offsets do not move, so a restart goes back to
    /// the input's own time.
    pub fn advance_event_time(&mut self, to: i64) -> Result<RunStats> {
        self.engine.advance_event_time(to);
        self.run_until_idle()
    }

    /// Processes until `shutdown` is triggered; then commits the open epoch and returns.
    pub fn run_until_stopped(&mut self, shutdown: &Shutdown) -> Result<RunStats> {
        self.status.set_phase(Phase::Running);
        let run = self.runtime.block_on(self.engine.run_until(shutdown));
        App::running(&self.status, run)?;
        Ok(self.stats())
    }

    /// Processes until the app's stop request is triggered ([`AppHandle::stop`], or a signal
    /// after [`App::shutdown_on_signals`]); then commits the open epoch and returns. Async: runs
    /// on the caller's tokio runtime, whatever its flavour (with its time driver enabled), while
    /// the lanes run on the app's own.
    pub async fn run(&mut self) -> Result<RunStats> {
        let shutdown = self.shutdown.clone();
        self.status.set_phase(Phase::Running);
        let run = self.engine.run_until(&shutdown).await;
        App::running(&self.status, run)?;
        Ok(self.stats())
    }

    /// [`App::run_until_idle`] for async code.
    pub async fn run_until_idle_async(&mut self) -> Result<RunStats> {
        self.status.set_phase(Phase::Running);
        let run = self.engine.run_until_idle().await;
        App::running(&self.status, run)?;
        Ok(self.stats())
    }

    /// What the app has done so far.
    pub fn stats(&self) -> RunStats {
        self.stats.snapshot()
    }

    /// Reads committed state: `f` gets a fresh instance of the state struct `S`.
    pub fn read_state<S: StateSet, R>(&self, f: impl FnOnce(&S) -> R) -> Result<R> {
        read_state(&self.state, f)
    }

    /// How many entries the state store `store` holds, as of the last committed epoch (an
    /// unknown name is [`StoreError::Unknown`](crate::error::StoreError::Unknown)).
    pub fn store_entries(&self, store: &str) -> Result<u64> {
        Ok(self.state.entries(store)?)
    }
}

/// The app's tokio runtime. Dropping it waits at most a second for its tasks: a lane stuck in
/// operator code cannot be cancelled, and must not keep the app's owner from going on (tokio's
/// own drop would wait for it forever).
struct OwnedRuntime(std::mem::ManuallyDrop<tokio::runtime::Runtime>);

impl std::ops::Deref for OwnedRuntime {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        // SAFETY: the runtime is taken once, here, and the field is never used again.
        let runtime = unsafe { std::mem::ManuallyDrop::take(&mut self.0) };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Dropped in async code, where waiting is not allowed: let the tasks end by themselves.
            runtime.shutdown_background();
        } else {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

pub(crate) fn read_state<S: StateSet, R>(state: &StateEnv, f: impl FnOnce(&S) -> R) -> Result<R> {
    let mut instance = S::open(state)?;
    let out = f(&instance);
    instance.end_batch();
    Ok(out)
}

/// Starts the HTTP endpoints (`Config::http`) on the app's runtime.
#[cfg(feature = "http")]
#[allow(clippy::too_many_arguments)]
fn serve_http(
    addr: std::net::SocketAddr,
    config: &Config,
    program: &Program,
    state: &StateEnv,
    log: &Arc<dyn Log>,
    stats: &Arc<Stats>,
    status: &Arc<Status>,
    runtime: &tokio::runtime::Runtime,
) -> Result<std::net::SocketAddr> {
    let observed = crate::http::Observed {
        app: program.app().to_string(),
        description: program.description().clone(),
        status: Arc::clone(status),
        stats: Arc::clone(stats),
        state: state.clone(),
        stores: program.stores().to_vec(),
        log: Arc::clone(log),
        liveness_timeout: config.liveness_timeout,
        metrics: crate::http::prometheus::install(),
    };
    crate::http::serve(addr, Arc::new(observed), runtime)
}

/// Without the `http` feature, asking for the endpoints is an error naming it.
#[cfg(not(feature = "http"))]
#[allow(clippy::too_many_arguments)]
fn serve_http(
    addr: std::net::SocketAddr,
    _: &Config,
    _: &Program,
    _: &StateEnv,
    _: &Arc<dyn Log>,
    _: &Arc<Stats>,
    _: &Arc<Status>,
    _: &tokio::runtime::Runtime,
) -> Result<std::net::SocketAddr> {
    Err(Error::Config(format!(
        "`Config::http` asks for HTTP endpoints on {addr}, but stoat was built without its `http` feature"
    )))
}
