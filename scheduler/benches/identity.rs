//! Identity load benchmark: `cargo bench -p yunji-scheduler --bench identity`.
//!
//! Starts a scheduler in this process (plain HTTP on 127.0.0.1, a temporary data
//! directory, no local agents, the default OWASP argon2id parameters) and measures, at
//! concurrency 1 and 16 (tokio tasks sharing one keep-alive client):
//!
//! - the floor: unauthenticated `GET /identity/v3`;
//! - token validation: `GET /identity/v3/auth/tokens` (admin validating another token);
//! - token issue: `POST /identity/v3/auth/tokens`, password method, project-scoped;
//!
//! and, in the same run, one argon2id verification with the same parameters called
//! directly on a dedicated thread, interleaved with the single-client issue requests so
//! that both see the same machine load. It prints a table and the target checks with
//! PASS/FAIL; it is a report, so it exits 0 whatever the figures (it exits 1 only if the
//! scheduler cannot be started or does not answer as expected).
//!
//! The CPU columns are the whole process's (client and server together, from
//! `/proc/self/stat`, 10 ms resolution) per request: `sys` and `faults` show the cost of
//! memory the kernel has to hand out (e.g. argon2's working area).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use reqwest::{Client, Method, StatusCode};
use serde_json::json;
use tokio::sync::oneshot;
use yunji_scheduler::config::Config;

const ADMIN_PASSWORD: &str = "bench-admin-password-7f3c";
/// Requests per measurement for the cheap endpoints, and for issue (argon2-bound).
const CHEAP_REQUESTS: usize = 5000;
const CHEAP_WARMUP: usize = 500;
const ISSUE_REQUESTS_C1: usize = 200;
const ISSUE_REQUESTS_C16: usize = 400;
const ISSUE_WARMUP: usize = 16;
/// One direct argon2 verification (and one compute-only run) after every this many
/// issue requests at c=1 (200 / 4 = 50 runs each).
const ARGON2_EVERY: usize = 4;
/// Direct runs of each kind before measuring.
const ARGON2_WARMUP: usize = 3;
/// Verifications per thread for the all-cores direct throughput.
const ARGON2_PARALLEL_PER_THREAD: usize = 15;
/// No single measurement may run longer than this; it stops early and says so.
const MEASUREMENT_CAP: Duration = Duration::from_secs(40);
const CONCURRENCIES: [usize; 2] = [1, 16];

// ---------------------------------------------------------------------------------------
// Resource usage (Linux /proc; absent elsewhere)

/// CPU time and minor page faults, of the process or of one thread.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    cpu: Duration,
    sys: Duration,
    faults: u64,
}

impl Usage {
    fn of(path: &str) -> Option<Usage> {
        let stat = std::fs::read_to_string(path).ok()?;
        // Fields after the command name (which may contain spaces) in parentheses.
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        // minflt is field 10, utime 14, stime 15 (1-based); USER_HZ is 100 on Linux.
        let (faults, utime, stime) = (n(7)?, n(11)?, n(12)?);
        let tick = Duration::from_millis(10);
        Some(Usage {
            cpu: tick * (utime + stime) as u32,
            sys: tick * stime as u32,
            faults,
        })
    }
    fn process() -> Option<Usage> {
        Usage::of("/proc/self/stat")
    }
    fn this_thread() -> Option<Usage> {
        Usage::of("/proc/thread-self/stat")
    }
    fn minus(self, o: Usage) -> Usage {
        Usage {
            cpu: self.cpu.saturating_sub(o.cpu),
            sys: self.sys.saturating_sub(o.sys),
            faults: self.faults.saturating_sub(o.faults),
        }
    }
}

fn usage_between(before: Option<Usage>, after: Option<Usage>) -> Option<Usage> {
    Some(after?.minus(before?))
}

// ---------------------------------------------------------------------------------------
// HTTP load

/// What one request is.
#[derive(Clone)]
struct Call {
    method: Method,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Option<String>,
    expect: StatusCode,
}

impl Call {
    async fn send(&self, client: &Client) -> anyhow::Result<()> {
        let mut req = client.request(self.method.clone(), &self.url);
        for (name, value) in &self.headers {
            req = req.header(*name, value);
        }
        if let Some(body) = &self.body {
            req = req
                .header("content-type", "application/json")
                .body(body.clone());
        }
        let resp = req.send().await?;
        let status = resp.status();
        // Read the whole body: the client pays for it, as a real one would.
        let body = resp.bytes().await?;
        if status != self.expect {
            bail!(
                "{} {}: expected {}, got {status}: {}",
                self.method,
                self.url,
                self.expect,
                String::from_utf8_lossy(&body)
            );
        }
        Ok(())
    }
}

/// The outcome of one measurement.
struct Measured {
    name: &'static str,
    concurrency: usize,
    requests: usize,
    errors: usize,
    wall: Duration,
    /// Sorted.
    latencies: Vec<Duration>,
    usage: Option<Usage>,
    capped: bool,
}

impl Measured {
    fn rps(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }
    fn p50(&self) -> Duration {
        percentile(&self.latencies, 0.50)
    }
    fn p99(&self) -> Duration {
        percentile(&self.latencies, 0.99)
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What `run` found: latencies of the successful requests, errors, wall time, capped.
struct Run {
    latencies: Vec<Duration>,
    errors: usize,
    wall: Duration,
    capped: bool,
}

/// Sends `total` requests from `concurrency` tasks sharing `client`.
async fn run(client: &Client, call: &Call, concurrency: usize, total: usize) -> Run {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + MEASUREMENT_CAP;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (client, call, next) = (client.clone(), call.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(total / concurrency + 1);
            let (mut errors, mut first_error, mut capped) = (0usize, None, false);
            while next.fetch_add(1, Ordering::Relaxed) < total {
                if Instant::now() >= deadline {
                    capped = true;
                    break;
                }
                let t = Instant::now();
                match call.send(&client).await {
                    Ok(()) => latencies.push(t.elapsed()),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (latencies, errors, first_error, capped)
        }));
    }
    let mut out = Run {
        latencies: Vec::with_capacity(total),
        errors: 0,
        wall: Duration::ZERO,
        capped: false,
    };
    for task in tasks {
        match task.await {
            Ok((latencies, errors, first_error, capped)) => {
                out.latencies.extend(latencies);
                out.errors += errors;
                out.capped |= capped;
                if let Some(err) = first_error {
                    eprintln!("  request error ({} {}): {err:#}", call.method, call.url);
                }
            }
            Err(join) => {
                eprintln!("  a load task failed: {join}");
                out.errors += 1;
            }
        }
    }
    out.wall = started.elapsed();
    out.latencies.sort_unstable();
    out
}

async fn measure(
    client: &Client,
    name: &'static str,
    call: &Call,
    concurrency: usize,
    warmup: usize,
    total: usize,
) -> Measured {
    // Warm-up at the same concurrency, so the pool holds `concurrency` open connections.
    let _ = run(client, call, concurrency, warmup).await;
    let before = Usage::process();
    let r = run(client, call, concurrency, total).await;
    Measured {
        name,
        concurrency,
        requests: total,
        errors: r.errors,
        wall: r.wall,
        latencies: r.latencies,
        usage: usage_between(before, Usage::process()),
        capped: r.capped,
    }
}

// ---------------------------------------------------------------------------------------
// argon2 alone

/// What the argon2 thread is asked to do once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Argon2Op {
    /// Exactly the server's call: `PasswordHash::new` + `Argon2::default().verify_password`,
    /// which allocates (and frees) the working area each time.
    Verify,
    /// The same computation into a working area allocated once and reused: argon2's
    /// compute cost alone, without the allocator and the kernel handing out memory.
    ComputeOnly,
}

/// One operation's duration and the thread's usage during it.
type Argon2Answer = anyhow::Result<(Duration, Option<Usage>)>;
type Argon2Request = (Argon2Op, oneshot::Sender<Argon2Answer>);

/// A dedicated thread that runs argon2 operations on request against one PHC string.
struct Argon2Worker {
    requests: mpsc::Sender<Argon2Request>,
}

impl Argon2Worker {
    fn start(phc: String, secret: &'static str) -> Argon2Worker {
        let (requests, rx) = mpsc::channel::<Argon2Request>();
        std::thread::spawn(move || {
            let mut memory = Vec::new();
            for (op, reply) in rx {
                let before = Usage::this_thread();
                let t = Instant::now();
                let ok = match op {
                    Argon2Op::Verify => PasswordHash::new(&phc)
                        .map(|parsed| {
                            Argon2::default()
                                .verify_password(secret.as_bytes(), &parsed)
                                .is_ok()
                        })
                        .unwrap_or(false),
                    Argon2Op::ComputeOnly => compute_into(&phc, secret, &mut memory),
                };
                let elapsed = t.elapsed();
                let answer = if ok {
                    Ok((elapsed, usage_between(before, Usage::this_thread())))
                } else {
                    Err(anyhow::anyhow!(
                        "argon2 ({op:?}): the reference hash does not verify"
                    ))
                };
                let _ = reply.send(answer);
            }
        });
        Argon2Worker { requests }
    }

    async fn run(&self, op: Argon2Op) -> Argon2Answer {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send((op, tx))
            .map_err(|_| anyhow::anyhow!("the argon2 thread is gone"))?;
        rx.await?
    }
}

/// Recomputes the PHC string's hash of `secret` into `memory` (grown once); whether it
/// matches.
fn compute_into(phc: &str, secret: &str, memory: &mut Vec<argon2::Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(params), Some(salt), Some(expected)) =
        (Params::try_from(&parsed), parsed.salt, parsed.hash)
    else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    if memory.len() != params.block_count() {
        *memory = vec![argon2::Block::default(); params.block_count()];
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into_with_memory(secret.as_bytes(), salt, &mut out, memory.as_mut_slice())
        .is_ok()
        && out == expected.as_bytes()
}

/// Verifications per second with `threads` threads verifying at once.
fn argon2_parallel(phc: &str, secret: &str, threads: usize, per_thread: usize) -> f64 {
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                if let Ok(parsed) = PasswordHash::new(phc) {
                    for _ in 0..per_thread {
                        let _ = Argon2::default().verify_password(secret.as_bytes(), &parsed);
                    }
                }
            });
        }
    });
    (threads * per_thread) as f64 / started.elapsed().as_secs_f64()
}

/// Samples of one argon2 operation, gathered between issue requests.
#[derive(Default)]
struct Direct {
    latencies: Vec<Duration>,
    usage: Option<Usage>,
    wall: Duration,
}

impl Direct {
    fn add(&mut self, took: Duration, usage: Option<Usage>) {
        self.latencies.push(took);
        self.wall += took;
        self.usage = match (self.usage, usage) {
            (None, u) => u,
            (Some(a), Some(b)) => Some(Usage {
                cpu: a.cpu + b.cpu,
                sys: a.sys + b.sys,
                faults: a.faults + b.faults,
            }),
            (Some(a), None) => Some(a),
        };
    }
    fn into_measured(mut self, name: &'static str) -> Measured {
        self.latencies.sort_unstable();
        Measured {
            name,
            concurrency: 1,
            requests: self.latencies.len(),
            errors: 0,
            wall: self.wall,
            latencies: self.latencies,
            usage: self.usage,
            capped: false,
        }
    }
}

/// Issue at concurrency 1, with one direct argon2 verification (the server's call) and
/// one compute-only run on the argon2 thread after every `ARGON2_EVERY` requests, so
/// that all three see the same machine load. Returns the issue measurement (its usage
/// without the argon2 thread's) and the two direct ones.
async fn measure_issue_c1(
    client: &Client,
    call: &Call,
    argon: &Argon2Worker,
) -> anyhow::Result<(Measured, Measured, Measured)> {
    let _ = run(client, call, 1, ISSUE_WARMUP).await;
    for _ in 0..ARGON2_WARMUP {
        argon.run(Argon2Op::Verify).await?;
        argon.run(Argon2Op::ComputeOnly).await?;
    }
    let before = Usage::process();
    let started = Instant::now();
    let deadline = started + MEASUREMENT_CAP;
    let mut issue = Vec::new();
    let (mut verify, mut compute) = (Direct::default(), Direct::default());
    let (mut errors, mut capped, mut direct_wall) = (0, false, Duration::ZERO);
    for i in 0..ISSUE_REQUESTS_C1 {
        if Instant::now() >= deadline {
            capped = true;
            break;
        }
        let t = Instant::now();
        match call.send(client).await {
            Ok(()) => issue.push(t.elapsed()),
            Err(e) => {
                if errors == 0 {
                    eprintln!("  request error ({} {}): {e:#}", call.method, call.url);
                }
                errors += 1;
            }
        }
        if i % ARGON2_EVERY == ARGON2_EVERY - 1 {
            let t = Instant::now();
            let (took, usage) = argon.run(Argon2Op::Verify).await?;
            verify.add(took, usage);
            let (took, usage) = argon.run(Argon2Op::ComputeOnly).await?;
            compute.add(took, usage);
            direct_wall += t.elapsed();
        }
    }
    let wall = started.elapsed().saturating_sub(direct_wall);
    let issue_usage = match (
        usage_between(before, Usage::process()),
        verify.usage,
        compute.usage,
    ) {
        (Some(p), Some(v), Some(c)) => Some(p.minus(v).minus(c)),
        _ => None,
    };
    issue.sort_unstable();
    Ok((
        Measured {
            name: "issue  POST /v3/auth/tokens",
            concurrency: 1,
            requests: ISSUE_REQUESTS_C1,
            errors,
            wall,
            latencies: issue,
            usage: issue_usage,
            capped,
        },
        verify.into_measured("argon2id verify_password"),
        compute.into_measured("argon2id compute only"),
    ))
}

// ---------------------------------------------------------------------------------------
// Report

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

fn print_header() {
    println!(
        "{:<30} {:>4} {:>6} {:>4} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "scenario",
        "conc",
        "reqs",
        "errs",
        "req/s",
        "p50 ms",
        "p99 ms",
        "cpu ms",
        "sys ms",
        "faults"
    );
    println!("{:<30} {:>64}", "", "(cpu, sys, faults: per request)");
    println!("{}", "-".repeat(100));
}

fn print_row(r: &Measured) {
    let n = r.latencies.len().max(1);
    let (cpu, sys, faults) = match r.usage {
        Some(u) => (
            format!("{:.3}", u.cpu.as_secs_f64() * 1e3 / n as f64),
            format!("{:.3}", u.sys.as_secs_f64() * 1e3 / n as f64),
            format!("{}", u.faults / n as u64),
        ),
        None => ("-".into(), "-".into(), "-".into()),
    };
    println!(
        "{:<30} {:>4} {:>6} {:>4} {:>9.1} {:>8} {:>8} {:>8} {:>8} {:>7}{}",
        r.name,
        r.concurrency,
        r.latencies.len(),
        r.errors,
        r.rps(),
        ms(r.p50()),
        ms(r.p99()),
        cpu,
        sys,
        faults,
        if r.capped {
            format!(
                "  (stopped at the {} s cap; {} planned)",
                MEASUREMENT_CAP.as_secs(),
                r.requests
            )
        } else {
            String::new()
        }
    );
}

// ---------------------------------------------------------------------------------------

async fn issue_token(client: &Client, base: &str, body: &str) -> anyhow::Result<String> {
    let resp = client
        .post(format!("{base}/identity/v3/auth/tokens"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    let status = resp.status();
    let token = resp
        .headers()
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.text().await?;
    match token {
        Some(token) if status == StatusCode::CREATED => Ok(token),
        _ => bail!("token issue failed: {status}: {text}"),
    }
}

async fn bench() -> anyhow::Result<()> {
    let bench_started = Instant::now();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir()?;
    let mut config = Config {
        data_dir: dir.path().join("data"),
        listen: ([127, 0, 0, 1], 0).into(),
        local_agents: 0,
        admin_password: Some(ADMIN_PASSWORD.to_string()),
        ..Config::default()
    };
    config.tls.plain_http = true;
    let (memory_kib, iterations) = (
        config.identity.argon2_memory_kib,
        config.identity.argon2_iterations,
    );
    let running = yunji_scheduler::start(config)
        .await
        .context("starting the scheduler")?;
    let base = format!("http://{}", running.addr);

    println!("yunji identity benchmark");
    println!(
        "  scheduler {base} (in-process, plain HTTP), {cores} CPU(s), argon2id m={memory_kib} KiB t={iterations} p=1"
    );

    // The reference hash for direct verification: same parameters as the server's.
    let secret = "a reference password";
    let params = Params::new(memory_kib, iterations, 1, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
        .to_string();
    let argon = Argon2Worker::start(phc.clone(), secret);
    let argon_parallel = tokio::task::spawn_blocking(move || {
        argon2_parallel(&phc, secret, cores, ARGON2_PARALLEL_PER_THREAD)
    })
    .await?;

    let client = Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()?;
    let issue_body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD,
        }}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
    }})
    .to_string();
    let admin_token = issue_token(&client, &base, &issue_body).await?;
    let subject_token = issue_token(&client, &base, &issue_body).await?;

    let floor = Call {
        method: Method::GET,
        url: format!("{base}/identity/v3"),
        headers: Vec::new(),
        body: None,
        expect: StatusCode::OK,
    };
    let validate = Call {
        method: Method::GET,
        url: format!("{base}/identity/v3/auth/tokens"),
        headers: vec![
            ("x-auth-token", admin_token),
            ("x-subject-token", subject_token),
        ],
        body: None,
        expect: StatusCode::OK,
    };
    let issue = Call {
        method: Method::POST,
        url: format!("{base}/identity/v3/auth/tokens"),
        headers: Vec::new(),
        body: Some(issue_body),
        expect: StatusCode::CREATED,
    };
    // Fail fast if any of them does not answer as expected.
    for call in [&floor, &validate, &issue] {
        call.send(&client).await.context("smoke request")?;
    }

    let mut results = Vec::new();
    let mut direct = None;
    let mut compute_only = None;
    for c in CONCURRENCIES {
        let (floor_name, validate_name) =
            ("floor  GET /identity/v3", "validate GET /v3/auth/tokens");
        results.push(measure(&client, floor_name, &floor, c, CHEAP_WARMUP, CHEAP_REQUESTS).await);
        results.push(
            measure(
                &client,
                validate_name,
                &validate,
                c,
                CHEAP_WARMUP,
                CHEAP_REQUESTS,
            )
            .await,
        );
        if c == 1 {
            let (i, d, k) = measure_issue_c1(&client, &issue, &argon).await?;
            results.push(i);
            direct = Some(d);
            compute_only = Some(k);
        } else {
            results.push(
                measure(
                    &client,
                    "issue  POST /v3/auth/tokens",
                    &issue,
                    c,
                    ISSUE_WARMUP,
                    ISSUE_REQUESTS_C16,
                )
                .await,
            );
        }
    }
    running.shutdown().await;
    let (Some(direct), Some(compute_only)) = (direct, compute_only) else {
        bail!("the direct argon2 measurement did not run");
    };

    // --- report ---
    println!();
    print_header();
    for r in &results {
        print_row(r);
    }
    print_row(&direct);
    print_row(&compute_only);
    println!(
        "{:<30} {:>4} {:>6} {:>4} {:>9.1}",
        format!("argon2id verify_password x{cores}"),
        cores,
        cores * ARGON2_PARALLEL_PER_THREAD,
        0,
        argon_parallel,
    );

    let find = |prefix: &str, c: usize| {
        results
            .iter()
            .find(|r| r.name.starts_with(prefix) && r.concurrency == c)
    };
    println!();
    println!("target checks");
    let mut failures = 0;
    for c in CONCURRENCIES {
        if let (Some(f), Some(v)) = (find("floor", c), find("validate", c)) {
            let ratio = v.p50().as_secs_f64() / f.p50().as_secs_f64();
            let ok = ratio <= 1.5 && v.errors == 0 && !v.latencies.is_empty();
            failures += usize::from(!ok);
            println!(
                "  [{}] validation p50 <= 1.5 x floor p50, c={c:<2}      : {} ms / {} ms = {ratio:.2}x{}",
                verdict(ok),
                ms(v.p50()),
                ms(f.p50()),
                if ok { "" } else { "   <<<<<<<<<< FAIL" }
            );
        }
    }
    let argon_p50 = direct.p50();
    if let Some(i) = find("issue", 1) {
        let ratio = i.p50().as_secs_f64() / argon_p50.as_secs_f64();
        let ok = ratio <= 1.25 && i.errors == 0 && !i.latencies.is_empty();
        failures += usize::from(!ok);
        println!(
            "  [{}] issue p50 <= 1.25 x argon2 verify p50, c=1  : {} ms / {} ms = {ratio:.2}x{}",
            verdict(ok),
            ms(i.p50()),
            ms(argon_p50),
            if ok { "" } else { "   <<<<<<<<<< FAIL" }
        );
    }
    if let Some(i) = find("issue", 1) {
        let pure = compute_only.p50();
        println!(
            "  [info] issue p50 / argon2 compute-only p50, c=1  : {} ms / {} ms = {:.2}x (verify_password p50 is {:.2}x compute-only)",
            ms(i.p50()),
            ms(pure),
            i.p50().as_secs_f64() / pure.as_secs_f64(),
            argon_p50.as_secs_f64() / pure.as_secs_f64(),
        );
    }
    if let Some(i) = find("issue", 16) {
        let ideal = cores as f64 / argon_p50.as_secs_f64();
        println!(
            "  [info] issue throughput at c=16: {:.1}/s = {:.2}x direct argon2 on {cores} threads ({:.1}/s), {:.2}x {cores} x 1/p50 ({:.1}/s)",
            i.rps(),
            i.rps() / argon_parallel,
            argon_parallel,
            i.rps() / ideal,
            ideal,
        );
    }
    println!();
    if failures > 0 {
        println!("!!!!!!!! {failures} TARGET CHECK(S) FAILED (see the FAIL lines above) !!!!!!!!");
    } else {
        println!("all target checks passed");
    }
    println!(
        "(benchmark took {:.1} s)",
        bench_started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() {
    // cargo passes `--bench`; there is nothing to configure, so arguments are ignored.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(bench()) {
        eprintln!("identity benchmark could not run: {e:#}");
        std::process::exit(1);
    }
}
