//! The control side: loads the plugin directory at start, then watches it (inotify, through
//! `notify`) and publishes new versions and removals into the [`PluginRegistry`].
//!
//! ## When a file is complete
//!
//! A plugin file that is still being copied must not be loaded: `dlopen` of half a library fails
//! at best. The watcher acts only on the events that end a write — close-after-write
//! (`IN_CLOSE_WRITE`) and moved-to (`IN_MOVED_TO`, an atomic `mv` into the directory) — and then
//! waits a settle period in which the size must not change; any write in between (`IN_MODIFY`)
//! puts the file back to "being written" until its next close. The best way to install a plugin is
//! still to copy it next to the directory and `mv` it in.
//!
//! ## Replacing and removing
//!
//! A complete file is loaded and checked ([`crate::load()`]) and published under the name in its
//! descriptor; stages pick the new version up at their next batch boundary. A file that fails to
//! load is reported and changes nothing: the version already running stays. Removing (or moving
//! away) the file that provides a plugin retires the plugin: stages pass spans through.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind, RenameMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::error::HostError;
use crate::events::PluginEvent;
use crate::load::{default_state_dir, load};
use crate::registry::PluginRegistry;

/// Where plugins come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginHostConfig {
    /// The directory of plugin files (`*.so`). Required.
    pub dir: PathBuf,
    /// Where private copies are opened from (see [`crate::load()`]). Defaults to a directory per
    /// process under the system's temporary directory.
    pub state_dir: Option<PathBuf>,
    /// How long a completed file's size must stay the same before it is loaded. Defaults to 200 ms.
    pub settle: Duration,
}

impl PluginHostConfig {
    /// Watches `dir` with the default settings.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), state_dir: None, settle: Duration::from_millis(200) }
    }
}

/// Runs the plugin directory: loaded at [`PluginHost::start`], watched until the host is dropped.
#[derive(Debug)]
pub struct PluginHost {
    registry: Arc<PluginRegistry>,
    stop: Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

enum Message {
    Fs(notify::Result<notify::Event>),
    Stop,
}

impl PluginHost {
    /// Loads every `*.so` in `config.dir` (each reported as loaded or refused), then watches it on
    /// a thread of its own.
    ///
    /// # Errors
    /// [`HostError`] when the directory cannot be read or watched, or the thread not started.
    pub fn start(config: PluginHostConfig, registry: Arc<PluginRegistry>) -> Result<Self, HostError> {
        // Events name files under the path that was watched: watch the canonical one, so that they
        // compare equal to what the scan finds whatever form the config gave.
        let dir =
            config.dir.canonicalize().map_err(|source| HostError::Directory { dir: config.dir.clone(), source })?;
        let config = PluginHostConfig { dir, ..config };
        let (sender, receiver) = mpsc::channel();
        let events = sender.clone();
        // The watch starts before the scan, so a file arriving during the scan is not missed.
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = events.send(Message::Fs(event));
        })
        .map_err(|source| HostError::Watch { dir: config.dir.clone(), source })?;
        watcher
            .watch(&config.dir, RecursiveMode::NonRecursive)
            .map_err(|source| HostError::Watch { dir: config.dir.clone(), source })?;
        let mut state = HostState {
            state_dir: config.state_dir.clone().unwrap_or_else(default_state_dir),
            dir: config.dir.clone(),
            registry: Arc::clone(&registry),
            providers: HashMap::new(),
            settle: SettleTracker::new(config.settle),
        };
        let mut initial: Vec<PathBuf> = std::fs::read_dir(&config.dir)
            .map_err(|source| HostError::Directory { dir: config.dir.clone(), source })?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| state.is_plugin_file(path))
            .collect();
        initial.sort();
        for path in initial {
            state.load_file(&path);
        }
        let thread = std::thread::Builder::new()
            .name("spanpipe-plugins".to_owned())
            .spawn(move || state.run(&receiver, watcher))
            .map_err(HostError::Thread)?;
        Ok(Self { registry, stop: sender, thread: Some(thread) })
    }

    /// The registry the host publishes into.
    #[must_use]
    pub fn registry(&self) -> &Arc<PluginRegistry> {
        &self.registry
    }
}

impl Drop for PluginHost {
    fn drop(&mut self) {
        let _ = self.stop.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct HostState {
    dir: PathBuf,
    state_dir: PathBuf,
    registry: Arc<PluginRegistry>,
    /// Which plugin name each file provides.
    providers: HashMap<PathBuf, String>,
    settle: SettleTracker,
}

/// The longest the watcher sleeps when nothing is settling: bounds how late a stop is noticed
/// should the stop message be lost.
const IDLE_WAIT: Duration = Duration::from_secs(1);

impl HostState {
    fn is_plugin_file(&self, path: &Path) -> bool {
        is_plugin_file(&self.dir, path)
    }

    fn run(mut self, receiver: &Receiver<Message>, watcher: RecommendedWatcher) {
        // The watcher lives (and watches) exactly as long as this loop.
        let _watcher = watcher;
        loop {
            let now = Instant::now();
            let wait =
                self.settle.next_due().map_or(IDLE_WAIT, |due| due.saturating_duration_since(now).min(IDLE_WAIT));
            match receiver.recv_timeout(wait) {
                Ok(Message::Fs(Ok(event))) => self.on_event(&event, Instant::now()),
                Ok(Message::Fs(Err(error))) => tracing::warn!(%error, "plugin directory watch error"),
                Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {}
            }
            for path in self.settle.due(Instant::now(), |path| std::fs::metadata(path).ok().map(|meta| meta.len())) {
                self.load_file(&path);
            }
        }
    }

    fn on_event(&mut self, event: &notify::Event, now: Instant) {
        let dir = self.dir.clone();
        for path in event.paths.iter().filter(|path| is_plugin_file(&dir, path)) {
            match event.kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write))
                | EventKind::Modify(ModifyKind::Name(RenameMode::To)) => match std::fs::metadata(path) {
                    Ok(meta) => self.settle.completed(path, meta.len(), now),
                    Err(_) => self.settle.forget(path),
                },
                EventKind::Create(CreateKind::File | CreateKind::Any)
                | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => {
                    self.settle.being_written(path, now);
                }
                EventKind::Remove(RemoveKind::File | RemoveKind::Any)
                | EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                    self.settle.forget(path);
                    self.removed(path);
                }
                _ => {}
            }
        }
    }

    fn load_file(&mut self, path: &Path) {
        match load(path, &self.state_dir) {
            Ok(plugin) => {
                let (name, version, kind) = (plugin.name().to_owned(), plugin.version().to_owned(), plugin.kind());
                let generation = self.registry.publish(plugin);
                let previous = self.providers.insert(path.to_path_buf(), name.clone());
                self.registry.emit(PluginEvent::Loaded {
                    name: name.clone(),
                    version,
                    kind,
                    path: path.to_path_buf(),
                    generation,
                });
                // The file now provides another plugin: the one it provided is gone.
                if let Some(previous) = previous.filter(|previous| *previous != name) {
                    self.retire_unless_provided(&previous, path);
                }
            }
            Err(error) => self.registry.emit(PluginEvent::Refused { path: path.to_path_buf(), error }),
        }
    }

    fn removed(&mut self, path: &Path) {
        if let Some(name) = self.providers.remove(path) {
            self.retire_unless_provided(&name, path);
        }
    }

    /// Retires `name` unless another file still provides it.
    fn retire_unless_provided(&mut self, name: &str, path: &Path) {
        if self.providers.values().any(|provided| provided == name) {
            return;
        }
        if let Some(generation) = self.registry.retire(name) {
            self.registry.emit(PluginEvent::Retired { name: name.to_owned(), path: path.to_path_buf(), generation });
        }
    }
}

/// Whether `path` is a plugin file directly inside `dir`.
fn is_plugin_file(dir: &Path, path: &Path) -> bool {
    path.parent() == Some(dir) && path.extension().is_some_and(|extension| extension == "so")
}

/// Decides when a written file is complete: after the event that ends a write, once its size has
/// stayed the same for the settle period with no write in between. Pure (time and sizes are
/// passed in), so it is tested without a file system.
#[derive(Debug)]
pub(crate) struct SettleTracker {
    settle: Duration,
    pending: HashMap<PathBuf, Pending>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    /// Written to since its last close: wait for the next close.
    BeingWritten,
    /// Closed (or moved in) with this size at `since`.
    Settling { size: u64, since: Instant },
}

impl SettleTracker {
    pub(crate) fn new(settle: Duration) -> Self {
        Self { settle, pending: HashMap::new() }
    }

    /// A write (or creation) happened: the file is not complete.
    pub(crate) fn being_written(&mut self, path: &Path, _now: Instant) {
        self.pending.insert(path.to_path_buf(), Pending::BeingWritten);
    }

    /// A write ended (close-after-write, moved-to) with the file at `size`.
    pub(crate) fn completed(&mut self, path: &Path, size: u64, now: Instant) {
        self.pending.insert(path.to_path_buf(), Pending::Settling { size, since: now });
    }

    /// The file is gone.
    pub(crate) fn forget(&mut self, path: &Path) {
        self.pending.remove(path);
    }

    /// When the next settling file is due for its size check.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.pending
            .values()
            .filter_map(|pending| match pending {
                Pending::Settling { since, .. } => Some(*since + self.settle),
                Pending::BeingWritten => None,
            })
            .min()
    }

    /// The files complete at `now`: settled for the period with their size unchanged
    /// (`size_of` reads it now; `None` means the file is gone). A file whose size changed settles
    /// again from now.
    pub(crate) fn due(&mut self, now: Instant, size_of: impl Fn(&Path) -> Option<u64>) -> Vec<PathBuf> {
        let mut ready = Vec::new();
        let settle = self.settle;
        self.pending.retain(|path, pending| {
            let Pending::Settling { size, since } = *pending else { return true };
            if now < since + settle {
                return true;
            }
            match size_of(path) {
                Some(current) if current == size => {
                    ready.push(path.clone());
                    false
                }
                Some(current) => {
                    *pending = Pending::Settling { size: current, since: now };
                    true
                }
                None => false,
            }
        });
        ready.sort();
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLE: Duration = Duration::from_millis(200);

    #[test]
    fn a_closed_file_is_due_once_its_size_held_for_the_settle_period() {
        let start = Instant::now();
        let path = Path::new("/plugins/libredact.so");
        let mut tracker = SettleTracker::new(SETTLE);
        tracker.completed(path, 4096, start);
        assert_eq!(tracker.next_due(), Some(start + SETTLE));
        assert!(tracker.due(start + Duration::from_millis(199), |_| Some(4096)).is_empty());
        assert_eq!(tracker.due(start + SETTLE, |_| Some(4096)), vec![path.to_path_buf()]);
        assert!(tracker.due(start + SETTLE * 2, |_| Some(4096)).is_empty(), "reported once");
    }

    #[test]
    fn a_file_still_being_written_is_never_due() {
        let start = Instant::now();
        let path = Path::new("/plugins/libredact.so");
        let mut tracker = SettleTracker::new(SETTLE);
        tracker.being_written(path, start);
        assert_eq!(tracker.next_due(), None);
        assert!(tracker.due(start + SETTLE * 10, |_| Some(1)).is_empty());
        // Closed, then written again before settling: back to waiting for a close.
        tracker.completed(path, 100, start + SETTLE);
        tracker.being_written(path, start + SETTLE + Duration::from_millis(10));
        assert!(tracker.due(start + SETTLE * 10, |_| Some(100)).is_empty());
    }

    #[test]
    fn a_size_change_during_settling_restarts_the_period_and_a_vanished_file_is_dropped() {
        let start = Instant::now();
        let growing = Path::new("/plugins/a.so");
        let vanished = Path::new("/plugins/b.so");
        let mut tracker = SettleTracker::new(SETTLE);
        tracker.completed(growing, 100, start);
        tracker.completed(vanished, 100, start);
        assert!(tracker.due(start + SETTLE, |path| (path == growing).then_some(200)).is_empty());
        assert_eq!(tracker.next_due(), Some(start + SETTLE * 2));
        assert!(tracker.due(start + SETTLE + Duration::from_millis(100), |_| Some(200)).is_empty());
        assert_eq!(tracker.due(start + SETTLE * 2, |_| Some(200)), vec![growing.to_path_buf()]);
        assert_eq!(tracker.next_due(), None);
    }
}
