//! Reloading when the config file changes: an inotify watch (through `notify`) on the file's
//! directory, debounced.
//!
//! The directory is watched, not the file: editors that save by writing a new file and renaming
//! it over the old one (vim, most IDEs), and Kubernetes' ConfigMap volumes (which swap a symlink)
//! replace the inode a file watch would follow. Any event naming the file (or, for a file reached
//! through a symlink, any event in the directory) starts (or restarts) the debounce period; when it passes quietly the file is read, and only if its bytes differ
//! from what was last seen is it reloaded. A half-written file is therefore usually not read at
//! all (writes keep restarting the period), and if a writer pauses longer than the period the
//! partial file is refused like any invalid config and the complete one applied at the next event.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher as _};

use crate::reloader::Reloader;

enum Message {
    Changed,
    Stop,
}

/// The watch; dropping it stops the thread.
#[derive(Debug)]
pub(crate) struct ConfigWatch {
    stop: mpsc::Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

impl ConfigWatch {
    /// Watches `file`'s directory and reloads `file` through `reloader` once changes have been
    /// quiet for `debounce`.
    ///
    /// # Errors
    /// When the directory cannot be watched.
    pub(crate) fn start(file: &Path, debounce: Duration, reloader: Arc<Reloader>) -> Result<Self, notify::Error> {
        let directory = file.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let (sender, receiver) = mpsc::channel();
        let events = sender.clone();
        let name = file.file_name().map(std::ffi::OsStr::to_os_string);
        // Through a symlink (a ConfigMap volume), the change is a swap of the link's target
        // elsewhere in the directory: every event counts. Otherwise only events naming the file
        // do — other files in the directory (an exporter's output) may change all the time.
        let through_symlink = std::fs::symlink_metadata(file).is_ok_and(|meta| meta.file_type().is_symlink());
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            let mere_access = event.kind.is_access() && !is_close_write(&event.kind);
            let names_file = through_symlink
                || event.paths.iter().any(|path| path.file_name().map(std::ffi::OsStr::to_os_string) == name);
            if !mere_access && names_file {
                let _ = events.send(Message::Changed);
            }
        })?;
        watcher.watch(directory, RecursiveMode::NonRecursive)?;
        let file = file.to_path_buf();
        let seen = std::fs::read(&file).ok();
        let thread = std::thread::Builder::new()
            .name("spanpipe-config-watch".into())
            .spawn(move || {
                // The watcher lives (and watches) exactly as long as this loop.
                let _watcher = watcher;
                watch(&receiver, &file, debounce, seen, &reloader);
            })
            .map_err(|error| notify::Error::generic(&format!("cannot start the config watch thread: {error}")))?;
        tracing::info!(file = %directory.display(), ?debounce, "watching the config file's directory for changes");
        Ok(Self { stop: sender, thread: Some(thread) })
    }
}

impl Drop for ConfigWatch {
    fn drop(&mut self) {
        let _ = self.stop.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn is_close_write(kind: &notify::EventKind) -> bool {
    matches!(kind, notify::EventKind::Access(notify::event::AccessKind::Close(notify::event::AccessMode::Write)))
}

fn watch(
    receiver: &mpsc::Receiver<Message>,
    file: &PathBuf,
    debounce: Duration,
    mut seen: Option<Vec<u8>>,
    reloader: &Reloader,
) {
    let mut due: Option<Instant> = None;
    loop {
        let wait = due.map_or(Duration::from_secs(3600), |due| due.saturating_duration_since(Instant::now()));
        match receiver.recv_timeout(wait) {
            Ok(Message::Changed) => due = Some(Instant::now() + debounce),
            Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) if due.is_none() => {}
            Err(RecvTimeoutError::Timeout) => {
                due = None;
                // Gone (between a delete and a create): the next event brings it back.
                let Ok(text) = std::fs::read(file) else { continue };
                if seen.as_ref() == Some(&text) {
                    continue;
                }
                seen = Some(text);
                // The outcome is logged, counted and recorded by the reloader.
                let _ = reloader.reload_file("file_change");
            }
        }
    }
}
