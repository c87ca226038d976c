//! Real Apache Kafka for tests: brokers started from the project's Maven-provisioned jars
//! (`tests/kafka/broker.sh`), one node or a three-node KRaft cluster on loopback, plus small
//! clients to create topics, produce lines and read everything committed.
//!
//! A broker is stopped when its handle drops; the runner script also kills it if the test
//! process dies, so no broker outlives its tests.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers as _;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// A record read back: key, value, headers.
pub type ReadRecord = (Option<Vec<u8>>, Option<Vec<u8>>, HashMap<String, Vec<u8>>);

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/broker.sh")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Makes sure the broker jars are there (downloads them through Maven the first time).
pub fn provision() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let status = Command::new("bash").arg(script()).arg("provision").stdout(Stdio::null()).status();
        assert!(status.is_ok_and(|s| s.success()), "provisioning the Kafka jars failed (Maven)");
    });
}

/// One broker process (a KRaft node).
pub struct Node {
    pub dir: PathBuf,
    pub port: u16,
    cluster_id: Option<String>,
    runner: Option<Child>,
}

impl Node {
    fn start(&mut self) {
        let _ = std::fs::remove_file(self.dir.join("logs/server.log"));
        // A stale pid file of the previous run would make `ready` see a dead broker at once.
        let _ = std::fs::remove_file(self.dir.join("broker.pid"));
        let mut cmd = Command::new("bash");
        if let Some(id) = &self.cluster_id {
            cmd.env("STOAT_KAFKA_CLUSTER_ID", id);
        }
        let runner = cmd
            .arg(script())
            .arg("run")
            .arg(&self.dir)
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the broker runner");
        self.runner = Some(runner);
    }

    fn wait_ready(&self) {
        let ok = Command::new("bash").arg(script()).arg("ready").arg(&self.dir).arg("120").status();
        if !ok.is_ok_and(|s| s.success()) {
            let log = std::fs::read_to_string(self.dir.join("logs/server.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            panic!("broker in {} did not start; server.log ends:\n{tail}", self.dir.display());
        }
    }

    fn pid(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("broker.pid")).ok().map(|s| s.trim().to_string())
    }

    fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").arg(sig).arg(&pid).status();
        }
    }

    /// Freezes the broker process (SIGSTOP): its connections stay open but nothing answers, as
    /// with a stalled machine or a long GC pause.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused broker (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Controlled shutdown (SIGTERM); waits until the process is gone.
    pub fn stop(&mut self) {
        self.signal("-TERM");
        self.reap(Duration::from_secs(60));
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        self.signal("-KILL");
        self.reap(Duration::from_secs(10));
    }

    fn reap(&mut self, within: Duration) {
        if let Some(mut runner) = self.runner.take() {
            let deadline = Instant::now() + within;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = runner.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            self.signal("-KILL");
            let _ = runner.kill();
            let _ = runner.wait();
        }
    }

    /// Starts the node again on its data (no format).
    pub fn restart(&mut self) {
        self.start();
        self.wait_ready();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.signal("-KILL");
        if let Some(mut runner) = self.runner.take() {
            let _ = runner.kill();
            let _ = runner.wait();
        }
    }
}

/// A cluster from [`Kafka::secured`]: its clients' listener (TLS + SASL/SCRAM) and the CA
/// certificate that listener's certificate is checked against.
pub struct Secured {
    pub kafka: Kafka,
    pub sasl_ssl: String,
    pub ca: PathBuf,
}

/// A running cluster: one node, or three.
pub struct Kafka {
    pub nodes: Vec<Node>,
    pub bootstrap: String,
    _dir: tempfile::TempDir,
}

impl Kafka {
    /// One combined broker+controller node.
    pub fn single() -> Kafka {
        provision();
        let dir = tempfile::Builder::new().prefix("stoat-kafka-").tempdir().expect("tempdir");
        let node_dir = dir.path().join("node1");
        let (port, ctrl) = (free_port(), free_port());
        let ok = Command::new("bash")
            .arg(script())
            .args(["single", &node_dir.display().to_string(), &port.to_string(), &ctrl.to_string()])
            .status();
        assert!(ok.is_ok_and(|s| s.success()));
        let mut node = Node { dir: node_dir, port, cluster_id: None, runner: None };
        node.start();
        node.wait_ready();
        Kafka { nodes: vec![node], bootstrap: format!("127.0.0.1:{port}"), _dir: dir }
    }

    /// Three nodes, each broker and controller, replication factor 3, min ISR 2.
    pub fn three_nodes() -> Kafka {
        provision();
        let dir = tempfile::Builder::new().prefix("stoat-kafka3-").tempdir().expect("tempdir");
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let voters: Vec<String> =
            ports.iter().enumerate().map(|(i, (_, c))| format!("{}@127.0.0.1:{c}", i + 1)).collect();
        let cluster_id = Command::new("java")
            .arg("-cp")
            .arg(format!("{}/.kafka/libs/*", env!("CARGO_MANIFEST_DIR")))
            .args(["kafka.tools.StorageTool", "random-uuid"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .expect("a cluster id");
        let mut nodes = Vec::new();
        for (i, (port, ctrl)) in ports.iter().enumerate() {
            let node_dir = dir.path().join(format!("node{}", i + 1));
            std::fs::create_dir_all(&node_dir).expect("node dir");
            let props = format!(
                "process.roles=broker,controller\nnode.id={id}\ncontroller.quorum.voters={voters}\n\
                 listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctrl}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{port}\ninter.broker.listener.name=PLAINTEXT\n\
                 controller.listener.names=CONTROLLER\nlistener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
                 log.dirs={data}\nnum.partitions=3\ndefault.replication.factor=3\nmin.insync.replicas=2\n\
                 offsets.topic.replication.factor=3\ntransaction.state.log.replication.factor=3\n\
                 transaction.state.log.min.isr=2\ngroup.initial.rebalance.delay.ms=0\n\
                 transaction.abort.timed.out.transaction.cleanup.interval.ms=1000\n\
                 broker.session.timeout.ms=4000\nbroker.heartbeat.interval.ms=1000\n\
                 num.network.threads=2\nnum.io.threads=2\nlog.cleaner.threads=1\nlog.cleaner.dedupe.buffer.size=2097152\n",
                id = i + 1,
                voters = voters.join(","),
                data = node_dir.join("data").display(),
            );
            std::fs::write(node_dir.join("server.properties"), props).expect("server.properties");
            std::fs::write(node_dir.join("format-flags"), "").expect("format flags");
            nodes.push(Node {
                dir: node_dir,
                port: *port,
                cluster_id: Some(cluster_id.clone()),
                runner: None,
            });
        }
        for node in &mut nodes {
            node.start();
        }
        for node in &nodes {
            node.wait_ready();
        }
        let bootstrap = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect::<Vec<_>>().join(",");
        Kafka { nodes, bootstrap, _dir: dir }
    }

    /// One node whose clients' listener takes TLS (a self-signed certificate for 127.0.0.1) with
    /// SASL/SCRAM-SHA-512 for `users` and authorizes every request by ACL (none granted yet:
    /// [`Kafka::grant`]). [`Kafka::bootstrap`] is a second, plaintext listener whose anonymous
    /// user is a super user, for the tests' own topics, records and ACLs.
    pub fn secured(users: &[(&str, &str)]) -> Secured {
        provision();
        let dir = tempfile::Builder::new().prefix("stoat-kafka-").tempdir().expect("tempdir");
        let node_dir = dir.path().join("node1");
        std::fs::create_dir_all(&node_dir).expect("node dir");
        let (port, internal, ctrl) = (free_port(), free_port(), free_port());
        let store = node_dir.join("broker.p12");
        let ca = node_dir.join("ca.pem");
        let keytool = |args: &[&str]| {
            let out = Command::new("keytool").args(args).output().expect("keytool (JDK)");
            assert!(out.status.success(), "keytool: {}", String::from_utf8_lossy(&out.stderr));
        };
        let store_s = store.display().to_string();
        keytool(&[
            "-genkeypair",
            "-alias",
            "broker",
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
            "-validity",
            "2",
            "-dname",
            "CN=localhost",
            "-ext",
            "SAN=ip:127.0.0.1,dns:localhost",
            "-keystore",
            &store_s,
            "-storetype",
            "PKCS12",
            "-storepass",
            "broker-store",
            "-keypass",
            "broker-store",
        ]);
        keytool(&[
            "-exportcert",
            "-alias",
            "broker",
            "-rfc",
            "-keystore",
            &store_s,
            "-storepass",
            "broker-store",
            "-file",
            &ca.display().to_string(),
        ]);
        let props = format!(
            "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.bootstrap.servers=127.0.0.1:{ctrl}\n\
             listeners=SASL_SSL://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal},CONTROLLER://127.0.0.1:{ctrl}\n\
             advertised.listeners=SASL_SSL://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal}\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL\n\
             inter.broker.listener.name=INTERNAL\ncontroller.listener.names=CONTROLLER\n\
             sasl.enabled.mechanisms=SCRAM-SHA-512\n\
             listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;\n\
             ssl.keystore.location={store_s}\nssl.keystore.password=broker-store\nssl.keystore.type=PKCS12\nssl.key.password=broker-store\n\
             authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n\
             super.users=User:ANONYMOUS\nallow.everyone.if.no.acl.found=false\n\
             log.dirs={data}\nnum.partitions=1\ndefault.replication.factor=1\nmin.insync.replicas=1\n\
             transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n\
             offsets.topic.replication.factor=1\nshare.coordinator.state.topic.replication.factor=1\n\
             share.coordinator.state.topic.min.isr=1\ntransaction.state.log.num.partitions=1\n\
             offsets.topic.num.partitions=1\ngroup.initial.rebalance.delay.ms=0\n\
             num.network.threads=2\nnum.io.threads=2\nbackground.threads=4\nlog.cleaner.threads=1\n\
             log.cleaner.dedupe.buffer.size=2097152\n",
            data = node_dir.join("data").display(),
        );
        std::fs::write(node_dir.join("server.properties"), props).expect("server.properties");
        let mut flags = String::from("--standalone");
        for (user, password) in users {
            flags.push_str(&format!(" --add-scram SCRAM-SHA-512=[name={user},password={password}]"));
        }
        std::fs::write(node_dir.join("format-flags"), flags).expect("format-flags");
        let mut node = Node { dir: node_dir.clone(), port: internal, cluster_id: None, runner: None };
        node.start();
        node.wait_ready();
        let kafka = Kafka { nodes: vec![node], bootstrap: format!("127.0.0.1:{internal}"), _dir: dir };
        Secured { kafka, sasl_ssl: format!("127.0.0.1:{port}"), ca }
    }

    /// Grants ACLs, one per line `PRINCIPAL RESOURCE_TYPE PATTERN_TYPE NAME OPERATION` (through
    /// Kafka's Java Admin client, `tests/kafka/Acls.java`).
    pub fn grant(&self, acls: &[String]) {
        let created = run_java("Acls.java", &[&self.bootstrap], &acls.join("\n"));
        assert_eq!(created.trim(), acls.len().to_string(), "ACLs created");
    }

    fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap);
        c
    }

    /// Creates a topic (the broker's default replication).
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        self.create_topic_with(topic, partitions, &[]);
    }

    /// Creates a topic with topic-level settings (e.g. `cleanup.policy`), retrying while a
    /// topic of the same name is still being deleted.
    pub fn create_topic_with(&self, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
        let admin: AdminClient<DefaultClientContext> = self.client().create().expect("admin client");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let new = || {
            let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
            for (k, v) in configs {
                new = new.set(k, v);
            }
            new
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let results = rt
                .block_on(admin.create_topics(
                    &[new()],
                    &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
                ))
                .expect("create topics");
            match results.into_iter().next() {
                Some(Ok(_)) => return,
                Some(Err((t, e))) if Instant::now() >= deadline => panic!("create topic {t}: {e}"),
                Some(Err(_)) => std::thread::sleep(Duration::from_millis(500)),
                None => panic!("create topic {topic}: no result"),
            }
        }
    }

    /// Deletes a topic.
    pub fn delete_topic(&self, topic: &str) {
        let admin: AdminClient<DefaultClientContext> = self.client().create().expect("admin client");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let results = rt
            .block_on(admin.delete_topics(
                &[topic],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            ))
            .expect("delete topics");
        for r in results {
            r.unwrap_or_else(|(t, e)| panic!("delete topic {t}: {e}"));
        }
    }

    /// Grows `topic` to `total` partitions.
    pub fn add_partitions(&self, topic: &str, total: usize) {
        let admin: AdminClient<DefaultClientContext> = self.client().create().expect("admin client");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let results = rt
            .block_on(admin.create_partitions(
                &[rdkafka::admin::NewPartitions::new(topic, total)],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            ))
            .expect("create partitions");
        for r in results {
            r.unwrap_or_else(|(t, e)| panic!("add partitions to {t}: {e}"));
        }
    }

    /// Produces lines into one partition.
    pub fn produce_to(&self, topic: &str, partition: i32, lines: &[String]) {
        let producer: BaseProducer = self.client().create().expect("producer");
        for line in lines {
            let rec = BaseRecord::<Vec<u8>, str>::to(topic).partition(partition).payload(line.as_str());
            producer.send(rec).unwrap_or_else(|(e, _)| panic!("produce: {e}"));
            producer.poll(Duration::ZERO);
        }
        producer.flush(Duration::from_secs(60)).expect("flush");
    }

    /// Produces `(key, value)` records and waits until all are acknowledged.
    pub fn produce(&self, topic: &str, records: impl IntoIterator<Item = (Option<Vec<u8>>, Vec<u8>)>) {
        self.produce_records(topic, records.into_iter().map(|(k, v)| (k, Some(v))));
    }

    /// Produces keyed records whose values may be null (tombstones).
    pub fn produce_nullable(
        &self,
        topic: &str,
        records: impl IntoIterator<Item = (String, Option<Vec<u8>>)>,
    ) {
        self.produce_records(topic, records.into_iter().map(|(k, v)| (Some(k.into_bytes()), v)));
    }

    /// Produces records with optional keys and values, waiting until all are acknowledged.
    pub fn produce_records(
        &self,
        topic: &str,
        records: impl IntoIterator<Item = (Option<Vec<u8>>, Option<Vec<u8>>)>,
    ) {
        self.produce_timed(topic, records.into_iter().map(|(k, v)| (k, v, None)));
    }

    /// Produces keyed records with the given timestamps (`None`: the producer's clock).
    pub fn produce_at(
        &self,
        topic: &str,
        records: impl IntoIterator<Item = (Option<Vec<u8>>, Vec<u8>, i64)>,
    ) {
        self.produce_timed(topic, records.into_iter().map(|(k, v, ts)| (k, Some(v), Some(ts))));
    }

    fn produce_timed(
        &self,
        topic: &str,
        records: impl IntoIterator<Item = (Option<Vec<u8>>, Option<Vec<u8>>, Option<i64>)>,
    ) {
        let producer: BaseProducer = self.client().set("linger.ms", "5").create().expect("producer");
        for (key, value, ts) in records {
            let mut rec = BaseRecord::<Vec<u8>, Vec<u8>>::to(topic);
            if let Some(ts) = ts {
                rec = rec.timestamp(ts);
            }
            if let Some(k) = &key {
                rec = rec.key(k);
            }
            if let Some(v) = &value {
                rec = rec.payload(v);
            }
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        rec = back;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
        }
        producer.flush(Duration::from_secs(60)).expect("flush");
    }

    /// Tests of one binary that each run brokers and faults take turns: two at once starve each
    /// other's brokers on a small machine.
    pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        LOCK.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Produces lines as null-keyed records.
    pub fn produce_lines<'a>(&self, topic: &str, lines: impl IntoIterator<Item = &'a String>) {
        self.produce(topic, lines.into_iter().map(|l| (None, l.as_bytes().to_vec())));
    }

    /// Every committed record of `topic` (read_committed), partition by partition, in offset
    /// order: `(key, value, headers)`.
    pub fn read_committed(&self, topic: &str) -> Vec<ReadRecord> {
        self.read_committed_by_partition(topic).into_iter().map(|(_, r)| r).collect()
    }

    /// [`Kafka::read_committed`] with each record's partition.
    pub fn read_committed_by_partition(&self, topic: &str) -> Vec<(i32, ReadRecord)> {
        let consumer: BaseConsumer = self
            .client()
            .set("group.id", "stoat-test-reader")
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
        let partitions: Vec<i32> =
            metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
        let mut tpl = TopicPartitionList::new();
        let mut ends = HashMap::new();
        for &p in &partitions {
            let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks");
            ends.insert(p, high);
            tpl.add_partition_offset(topic, p, Offset::Beginning).expect("tpl");
        }
        consumer.assign(&tpl).expect("assign");
        let mut by_partition: HashMap<i32, Vec<_>> = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    let headers = m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                                .collect()
                        })
                        .unwrap_or_default();
                    by_partition.entry(m.partition()).or_default().push((
                        m.key().map(<[u8]>::to_vec),
                        m.payload().map(<[u8]>::to_vec),
                        headers,
                    ));
                }
                // Connection errors to a dead broker are reported and retried by librdkafka.
                Some(Err(e)) => {
                    assert!(Instant::now() < deadline, "reading {topic}: {e}");
                }
                None => {
                    let pos = consumer.position().expect("position");
                    let done = partitions.iter().all(|&p| {
                        let at = pos.find_partition(topic, p).and_then(|e| e.offset().to_raw()).unwrap_or(-1);
                        ends[&p] == 0 || at >= ends[&p]
                    });
                    if done {
                        break;
                    }
                    assert!(Instant::now() < deadline, "reading {topic} did not reach its end");
                }
            }
        }
        let mut out = Vec::new();
        let mut ps: Vec<_> = by_partition.into_iter().collect();
        ps.sort_by_key(|(p, _)| *p);
        for (p, records) in ps {
            out.extend(records.into_iter().map(|r| (p, r)));
        }
        out
    }
}

/// Runs a topology on Kafka until it has read nothing new for two seconds; stops it after
/// `limit` whatever it is doing, so an app that never gets idle fails its test instead of hanging
/// the suite.
pub fn run_until_idle(
    topology: &stoat::Topology,
    config: stoat::Config,
    kafka: stoat::KafkaConfig,
    limit: Duration,
) -> stoat::Result<stoat::RunStats> {
    let mut app = stoat::App::kafka(topology, config, kafka)?;
    let shutdown = stoat::Shutdown::new();
    app.stop_when_idle(&shutdown, Duration::from_secs(2));
    let deadline = shutdown.clone();
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        deadline.trigger();
    });
    app.run_until_stopped(&shutdown)
}

/// Checks a word count output topic against the oracle: every word's outputs, in order, are
/// exactly 1, 2, ..., n with n its count (a lost record leaves a gap or a smaller n, a duplicate
/// repeats a value or makes n larger, an aborted record visible would do either).
pub fn check_word_counts(
    outputs: &[ReadRecord],
    oracle: &std::collections::BTreeMap<String, u64>,
) -> Result<(), String> {
    let mut last: HashMap<String, u64> = HashMap::new();
    for (key, value, _) in outputs {
        let word = String::from_utf8(key.clone().unwrap_or_default()).map_err(|e| e.to_string())?;
        let n: u64 = String::from_utf8_lossy(value.as_deref().unwrap_or_default())
            .parse()
            .map_err(|e| format!("value of {word}: {e}"))?;
        let prev = last.insert(word.clone(), n).unwrap_or(0);
        if n != prev + 1 {
            return Err(format!("word `{word}`: output {n} after {prev}"));
        }
    }
    for (word, &n) in oracle {
        let got = last.get(word).copied().unwrap_or(0);
        if got != n {
            return Err(format!("word `{word}`: final count {got}, expected {n}"));
        }
    }
    if last.len() != oracle.len() {
        return Err(format!("{} words in the output, {} expected", last.len(), oracle.len()));
    }
    Ok(())
}

/// Runs one of the Java programs in `tests/kafka/` against the provisioned Kafka jars, with
/// `input` on its stdin; returns its stdout.
pub fn run_java(program: &str, args: &[&str], input: &str) -> String {
    use std::io::Write;
    provision();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("java")
        .arg("-cp")
        .arg(root.join(".kafka/libs/*"))
        .arg(root.join("tests/kafka").join(program))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("java");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write the input");
    let out = child.wait_with_output().expect("java output");
    assert!(out.status.success(), "{program} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The partitions Kafka's Java clients pick for `keys` among `partitions`, computed by the
/// Kafka jars themselves (`tests/kafka/Partitions.java`).
pub fn java_partitions(keys: &[String], partitions: u32) -> Vec<i32> {
    let mut input = keys.join("\n");
    input.push('\n');
    run_java("Partitions.java", &[&partitions.to_string()], &input)
        .lines()
        .map(|l| l.trim().parse().expect("a partition"))
        .collect()
}

/// The word_count example binary that `cargo test` builds next to the test binaries.
pub fn word_count_bin() -> PathBuf {
    example_bin("word_count")
}

/// The built example `name` (cargo builds the examples for `cargo test`).
pub fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("examples").join(name);
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test`, which builds the examples",
        bin.display()
    );
    bin
}
