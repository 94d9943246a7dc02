//! The experiment event log: assignments, predictions, outcomes and rollout transitions as rolling
//! Apache Arrow IPC stream files, written by a thread of its own and read back by [`read`].
//!
//! Layout: `DIR/events-<seq>.arrows` (finished segments) and at most one
//! `DIR/events-<seq>.arrows.partial` (the segment being written). Every flush appends one complete
//! record batch and hands it to the operating system, so a killed process loses only rows not yet
//! flushed; finished segments are never written again. A segment is finished (end-of-stream marker,
//! fsync, rename) when it reaches the size bound or the log closes. The reader takes every complete
//! batch of every segment and stops quietly at a torn last batch of a `.partial` one.
//!
//! The schema (one row per event, long format):
//! `ts` (timestamp µs, UTC), `kind` ("assignment", "outcome" or "transition"), `experiment`,
//! `variant`, `unit`, `request_id`, `model`, `version`, `propensity`, `prediction` (the first value
//! of the first output), `rows`, `metric`, `value`, `detail` (JSON text). Columns that do not apply
//! to a kind are null.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{Error, Result};

/// One event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Event {
    /// Microseconds since the epoch.
    pub ts_us: i64,
    pub kind: &'static str,
    pub experiment: String,
    pub variant: Option<String>,
    pub unit: Option<String>,
    pub request_id: Option<String>,
    pub model: Option<String>,
    pub version: Option<String>,
    pub propensity: Option<f64>,
    pub prediction: Option<f64>,
    pub rows: Option<i64>,
    pub metric: Option<String>,
    pub value: Option<f64>,
    pub detail: Option<String>,
}

/// The schema of the log.
pub fn schema() -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, true);
    let f = |n: &str| Field::new(n, DataType::Float64, true);
    Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("experiment", DataType::Utf8, false),
        s("variant"),
        s("unit"),
        s("request_id"),
        s("model"),
        s("version"),
        f("propensity"),
        f("prediction"),
        Field::new("rows", DataType::Int64, true),
        s("metric"),
        f("value"),
        s("detail"),
    ]))
}

/// Where and how the log is written.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventLogConfig {
    /// The folder of the segments (created when missing).
    pub path: PathBuf,
    /// A segment is finished once it holds this many bytes.
    pub max_file_bytes: u64,
    /// Rows gathered before a flush.
    pub flush_rows: usize,
    /// Longest time a row waits for its flush, in milliseconds.
    pub flush_interval_ms: u64,
    /// Events waiting at most; beyond it events are dropped and counted.
    pub queue: usize,
    /// fsync after every flush (slower; survives a power cut, not only a killed process).
    pub fsync: bool,
}

impl Default for EventLogConfig {
    fn default() -> Self {
        EventLogConfig { path: PathBuf::from("events"), max_file_bytes: 64 << 20, flush_rows: 4096, flush_interval_ms: 1000, queue: 1 << 16, fsync: false }
    }
}

#[derive(Default)]
struct Builders {
    ts: TimestampMicrosecondBuilder,
    kind: StringBuilder,
    experiment: StringBuilder,
    variant: StringBuilder,
    unit: StringBuilder,
    request_id: StringBuilder,
    model: StringBuilder,
    version: StringBuilder,
    propensity: Float64Builder,
    prediction: Float64Builder,
    rows: Int64Builder,
    metric: StringBuilder,
    value: Float64Builder,
    detail: StringBuilder,
    len: usize,
}

impl Builders {
    fn push(&mut self, e: Event) {
        self.ts.append_value(e.ts_us);
        self.kind.append_value(e.kind);
        self.experiment.append_value(&e.experiment);
        self.variant.append_option(e.variant);
        self.unit.append_option(e.unit);
        self.request_id.append_option(e.request_id);
        self.model.append_option(e.model);
        self.version.append_option(e.version);
        self.propensity.append_option(e.propensity);
        self.prediction.append_option(e.prediction);
        self.rows.append_option(e.rows);
        self.metric.append_option(e.metric);
        self.value.append_option(e.value);
        self.detail.append_option(e.detail);
        self.len += 1;
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        self.len = 0;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.ts.finish().with_timezone("UTC")),
            Arc::new(self.kind.finish()),
            Arc::new(self.experiment.finish()),
            Arc::new(self.variant.finish()),
            Arc::new(self.unit.finish()),
            Arc::new(self.request_id.finish()),
            Arc::new(self.model.finish()),
            Arc::new(self.version.finish()),
            Arc::new(self.propensity.finish()),
            Arc::new(self.prediction.finish()),
            Arc::new(self.rows.finish()),
            Arc::new(self.metric.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.detail.finish()),
        ];
        RecordBatch::try_new(schema.clone(), cols).map_err(|e| Error::Internal(format!("event batch: {e}")))
    }
}

/// Counts the bytes handed to the file.
struct Counting {
    file: BufWriter<File>,
    bytes: u64,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

struct Segment {
    writer: arrow_ipc::writer::StreamWriter<Counting>,
    partial: PathBuf,
    done: PathBuf,
}

enum Msg {
    Event(Box<Event>),
    Flush(SyncSender<()>),
    Close,
}

/// The sending side of the log; cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    error: Arc<Mutex<Option<String>>>,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

fn seq_of(name: &str) -> Option<u64> {
    name.strip_prefix("events-")?.split('.').next()?.parse().ok()
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(what, e)
}

struct WriterState {
    cfg: EventLogConfig,
    schema: SchemaRef,
    next_seq: u64,
    segment: Option<Segment>,
}

impl WriterState {
    fn open(&mut self) -> Result<&mut Segment> {
        if self.segment.is_none() {
            let base = self.cfg.path.join(format!("events-{:08}.arrows", self.next_seq));
            self.next_seq += 1;
            let partial = PathBuf::from(format!("{}.partial", base.display()));
            let file = File::create(&partial).map_err(io(format!("cannot create {}", partial.display())))?;
            let counting = Counting { file: BufWriter::with_capacity(1 << 16, file), bytes: 0 };
            let writer = arrow_ipc::writer::StreamWriter::try_new(counting, &self.schema)
                .map_err(|e| Error::Internal(format!("event log {}: {e}", partial.display())))?;
            self.segment = Some(Segment { writer, partial, done: base });
        }
        Ok(self.segment.as_mut().expect("opened above"))
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let fsync = self.cfg.fsync;
        let seg = self.open()?;
        seg.writer.write(batch).map_err(|e| Error::Internal(format!("event log {}: {e}", seg.partial.display())))?;
        seg.writer.flush().map_err(|e| Error::Internal(format!("event log {}: {e}", seg.partial.display())))?;
        if fsync {
            seg.writer.get_ref().file.get_ref().sync_data().map_err(io(format!("fsync {}", seg.partial.display())))?;
        }
        if seg.writer.get_ref().bytes >= self.cfg.max_file_bytes {
            self.finish()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(mut seg) = self.segment.take() {
            seg.writer.finish().map_err(|e| Error::Internal(format!("event log {}: {e}", seg.partial.display())))?;
            seg.writer.get_ref().file.get_ref().sync_all().map_err(io(format!("fsync {}", seg.partial.display())))?;
            drop(seg.writer);
            fs::rename(&seg.partial, &seg.done).map_err(io(format!("cannot rename {}", seg.partial.display())))?;
        }
        Ok(())
    }
}

impl EventLog {
    /// Creates the folder when missing and starts the writer thread. New segments number on from the
    /// highest already in the folder.
    pub fn open(cfg: EventLogConfig) -> Result<EventLog> {
        if cfg.flush_rows == 0 || cfg.queue == 0 || cfg.max_file_bytes == 0 {
            return Err(Error::param("event_log: flush_rows, queue and max_file_bytes must be positive"));
        }
        fs::create_dir_all(&cfg.path).map_err(io(format!("event_log: cannot create {}", cfg.path.display())))?;
        let mut next_seq = 0;
        for entry in fs::read_dir(&cfg.path).map_err(io(format!("event_log: cannot list {}", cfg.path.display())))?.flatten() {
            if let Some(s) = entry.file_name().to_str().and_then(seq_of) {
                next_seq = next_seq.max(s + 1);
            }
        }
        let (tx, rx) = sync_channel(cfg.queue);
        let error = Arc::new(Mutex::new(None));
        let written = Arc::new(AtomicU64::new(0));
        let state = WriterState { cfg, schema: schema(), next_seq, segment: None };
        let (err, w) = (error.clone(), written.clone());
        let thread = std::thread::Builder::new()
            .name("ferrox-events".into())
            .spawn(move || writer_loop(rx, state, err, w))
            .map_err(|e| Error::io("cannot start the event log thread", e))?;
        Ok(EventLog { tx, dropped: Arc::default(), written, error, thread: Arc::new(Mutex::new(Some(thread))) })
    }

    /// Queues an event; a full queue drops it (counted in [`EventLog::dropped`]).
    pub fn send(&self, e: Event) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(Msg::Event(Box::new(e))) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// The last write error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }

    /// Writes every queued event out now (returns once they are in the file).
    pub fn flush(&self) {
        let (tx, rx) = sync_channel(1);
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(Duration::from_secs(10));
        }
    }

    /// Flushes, finishes the open segment and stops the writer (later events are dropped).
    pub fn close(&self) {
        let _ = self.tx.send(Msg::Close);
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

fn writer_loop(rx: Receiver<Msg>, mut state: WriterState, error: Arc<Mutex<Option<String>>>, written: Arc<AtomicU64>) {
    let mut b = Builders::default();
    let interval = Duration::from_millis(state.cfg.flush_interval_ms.max(1));
    let mut first_pending: Option<Instant> = None;
    let schema = state.schema.clone();
    let flush = |b: &mut Builders, state: &mut WriterState| {
        if b.len == 0 {
            return;
        }
        let n = b.len as u64;
        let r = b.finish(&schema).and_then(|batch| state.write(&batch));
        match r {
            Ok(()) => {
                written.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                if let Ok(mut slot) = error.lock() {
                    *slot = Some(e.to_string());
                }
                // A failed segment is abandoned; the next flush opens a new one.
                state.segment = None;
            }
        }
    };
    // The writer polls (sleeping up to 5 ms between drains) instead of blocking on the queue, so a
    // sender never has to wake it: queuing an event costs the request path no system call.
    let nap = interval.min(Duration::from_millis(5));
    'outer: loop {
        let mut got = false;
        loop {
            match rx.try_recv() {
                Ok(Msg::Event(e)) => {
                    got = true;
                    b.push(*e);
                    first_pending.get_or_insert_with(Instant::now);
                    if b.len >= state.cfg.flush_rows {
                        flush(&mut b, &mut state);
                        first_pending = None;
                    }
                }
                Ok(Msg::Flush(done)) => {
                    flush(&mut b, &mut state);
                    first_pending = None;
                    let _ = done.send(());
                }
                Ok(Msg::Close) | Err(TryRecvError::Disconnected) => break 'outer,
                Err(TryRecvError::Empty) => break,
            }
        }
        if first_pending.is_some_and(|t| t.elapsed() >= interval) {
            flush(&mut b, &mut state);
            first_pending = None;
        }
        if !got {
            std::thread::sleep(nap);
        }
    }
    flush(&mut b, &mut state);
    if let Err(e) = state.finish() {
        if let Ok(mut slot) = error.lock() {
            *slot = Some(e.to_string());
        }
    }
}

/// What [`read`] found.
pub struct Read {
    pub batches: Vec<RecordBatch>,
    pub schema: SchemaRef,
    /// Segment files read.
    pub files: usize,
    /// `.partial` segments whose last batch was torn (a killed writer) and skipped.
    pub torn: usize,
}

/// Reads a segment file, or every segment of a folder in order.
pub fn read(path: &Path) -> Result<Read> {
    let mut files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> = fs::read_dir(path)
            .map_err(io(format!("cannot list {}", path.display())))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| seq_of(n).is_some() && (n.ends_with(".arrows") || n.ends_with(".arrows.partial"))))
            .collect();
        v.sort_by_key(|p| p.file_name().and_then(|n| n.to_str()).and_then(seq_of).unwrap_or(0));
        v
    } else if path.exists() {
        vec![path.to_owned()]
    } else {
        return Err(Error::param(format!("path: {} does not exist", path.display())));
    };
    let schema = schema();
    let mut out = Read { batches: Vec::new(), schema: schema.clone(), files: 0, torn: 0 };
    for f in files.drain(..) {
        let partial = f.to_string_lossy().ends_with(".partial");
        let file = File::open(&f).map_err(io(format!("cannot open {}", f.display())))?;
        let reader = match arrow_ipc::reader::StreamReader::try_new(BufReader::new(file), None) {
            Ok(r) => r,
            // A writer killed before its first flush leaves an empty or torn header.
            Err(_) if partial => {
                out.torn += 1;
                continue;
            }
            Err(e) => return Err(Error::data(format!("{} is not an Arrow IPC stream: {e}", f.display()))),
        };
        if reader.schema().fields() != schema.fields() {
            return Err(Error::data(format!("{} does not hold ferrox experiment events (schema {:?})", f.display(), reader.schema())));
        }
        out.files += 1;
        for batch in reader {
            match batch {
                Ok(b) => out.batches.push(b),
                Err(_) if partial => {
                    out.torn += 1;
                    break;
                }
                Err(e) => return Err(Error::data(format!("{}: {e}", f.display()))),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, StringArray};

    fn ev(i: usize) -> Event {
        Event {
            ts_us: 1_700_000_000_000_000 + i as i64,
            kind: if i % 2 == 0 { "assignment" } else { "outcome" },
            experiment: "exp".into(),
            variant: Some(format!("v{}", i % 3)),
            request_id: Some(format!("r{i}")),
            value: (i % 2 == 1).then_some(i as f64),
            ..Default::default()
        }
    }

    #[test]
    fn rolls_finishes_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("ferrox-evlog-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let log = EventLog::open(EventLogConfig { path: dir.clone(), max_file_bytes: 4000, flush_rows: 50, ..Default::default() }).unwrap();
        for i in 0..1000 {
            log.send(ev(i));
        }
        log.close();
        assert_eq!(log.dropped(), 0);
        let r = read(&dir).unwrap();
        assert!(r.files > 2, "{} files", r.files);
        assert_eq!(r.torn, 0);
        let ids: Vec<String> = r
            .batches
            .iter()
            .flat_map(|b| {
                let a = b.column(5).as_any().downcast_ref::<StringArray>().unwrap().clone();
                (0..a.len()).map(move |i| a.value(i).to_owned())
            })
            .collect();
        assert_eq!(ids, (0..1000).map(|i| format!("r{i}")).collect::<Vec<_>>());
        assert!(fs::read_dir(&dir).unwrap().flatten().all(|e| e.file_name().to_string_lossy().ends_with(".arrows")));
        // A torn partial segment gives its complete batches, nothing more, and no error.
        let log = EventLog::open(EventLogConfig { path: dir.clone(), flush_rows: 10, ..Default::default() }).unwrap();
        for i in 0..35 {
            log.send(ev(i));
        }
        log.flush();
        let partial = fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).find(|p| p.to_string_lossy().ends_with(".partial")).unwrap();
        let bytes = fs::read(&partial).unwrap();
        let torn = dir.join("events-99999999.arrows.partial");
        fs::write(&torn, &bytes[..bytes.len() - 7]).unwrap();
        let r = read(&torn).unwrap();
        let rows: usize = r.batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!((rows, r.torn), (30, 1));
        log.close();
        let _ = fs::remove_dir_all(&dir);
    }
}
