//! The current version of every plugin, readable from data-plane cores without a lock.
//!
//! The registry is a map from plugin name to the version published last ([`Published`]), held in
//! an [`ArcSwap`]: readers (one per core, per batch) load the current map with a few atomic
//! operations and never wait; the control side (the [`crate::PluginHost`]'s watcher thread)
//! copies the map, changes the copy and swaps it in. Changes are rare (a file appears), reads are
//! per batch, so copy-on-write is the right trade.
//!
//! Every change gets a new generation number, unique and increasing across the registry. A stage
//! remembers the generation it runs and compares it with the registry's on every batch: equal
//! means nothing changed, different means "create an instance of what is published now (or pass
//! through if it is absent) and retire the old one" — at the batch boundary, never mid-batch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use crate::codec::PluginCodec;
use crate::events::{EventSink, PluginEvent};
use crate::load::{LoadedPlugin, PluginKind};

/// What is published under one name.
#[derive(Clone, Debug)]
pub struct Published {
    /// The generation of this publication.
    pub generation: u64,
    /// The plugin; `None` once its file was removed (absent).
    pub plugin: Option<Arc<LoadedPlugin>>,
    /// For a codec plugin, its [`spanpipe_codecs::Codec`], made once per publication so that
    /// every user shares one instance pool.
    codec: Option<Arc<PluginCodec>>,
}

/// Current plugin per name. Shared (`Arc`) between the host, every stage and the codec registry.
pub struct PluginRegistry {
    current: ArcSwap<HashMap<String, Published>>,
    /// Serialises writers (and numbers generations); readers never take it.
    writer: Mutex<u64>,
    events: EventSink,
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("PluginRegistry").field("current", &self.current.load()).finish_non_exhaustive()
    }
}

impl PluginRegistry {
    /// An empty registry whose plugins report to `events`.
    #[must_use]
    pub fn new(events: EventSink) -> Self {
        Self { current: ArcSwap::from_pointee(HashMap::new()), writer: Mutex::new(0), events }
    }

    /// Publishes `plugin` as the current version of its name; returns the new generation.
    /// Stages pick it up at their next batch boundary.
    pub fn publish(&self, plugin: LoadedPlugin) -> u64 {
        let plugin = Arc::new(plugin);
        let codec = (plugin.kind() == PluginKind::Codec)
            .then(|| Arc::new(PluginCodec::new(Arc::clone(&plugin), "{}", Arc::clone(&self.events))));
        let name = plugin.name().to_owned();
        self.update(name, |generation| Published { generation, plugin: Some(plugin), codec })
    }

    /// Marks `name` absent (its file was removed); returns the new generation, or `None` when the
    /// name was never published or is already absent.
    pub fn retire(&self, name: &str) -> Option<u64> {
        self.current(name)?.plugin?;
        Some(self.update(name.to_owned(), |generation| Published { generation, plugin: None, codec: None }))
    }

    fn update(&self, name: String, published: impl FnOnce(u64) -> Published) -> u64 {
        let mut last_generation = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        *last_generation += 1;
        let generation = *last_generation;
        let mut next = HashMap::clone(&self.current.load());
        next.insert(name, published(generation));
        self.current.store(Arc::new(next));
        generation
    }

    /// What is published under `name`; `None` when nothing ever was.
    #[must_use]
    pub fn current(&self, name: &str) -> Option<Published> {
        self.current.load().get(name).cloned()
    }

    /// The generation published under `name`, 0 when nothing ever was. The per-batch check.
    #[must_use]
    pub fn generation(&self, name: &str) -> u64 {
        self.current.load().get(name).map_or(0, |published| published.generation)
    }

    /// Names of the plugins present now, sorted.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        let current = self.current.load();
        let mut names: Vec<String> =
            current.iter().filter(|(_, published)| published.plugin.is_some()).map(|(name, _)| name.clone()).collect();
        names.sort();
        names
    }

    /// The codecs of the codec plugins present now, sorted by name, for the runtime's codec
    /// registry. The same `Arc` comes back until the plugin is replaced or removed.
    #[must_use]
    pub fn codecs(&self) -> Vec<Arc<PluginCodec>> {
        let current = self.current.load();
        let mut codecs: Vec<Arc<PluginCodec>> =
            current.values().filter_map(|published| published.codec.clone()).collect();
        codecs.sort_by(|a, b| spanpipe_codecs::Codec::name(a.as_ref()).cmp(spanpipe_codecs::Codec::name(b.as_ref())));
        codecs
    }

    /// The codec plugin present now that serves `media_type` (lower case), without allocating:
    /// the receivers ask per request whose content type no built-in codec serves. When two
    /// plugins claim the type, the one first by name wins, as in [`PluginRegistry::codecs`].
    #[must_use]
    pub fn codec_for(&self, media_type: &str) -> Option<Arc<PluginCodec>> {
        let current = self.current.load();
        current
            .values()
            .filter_map(|published| published.codec.as_ref())
            .filter(|codec| {
                spanpipe_codecs::Codec::content_types(codec.as_ref())
                    .iter()
                    .any(|served| served.eq_ignore_ascii_case(media_type))
            })
            .min_by(|a, b| spanpipe_codecs::Codec::name(a.as_ref()).cmp(spanpipe_codecs::Codec::name(b.as_ref())))
            .cloned()
    }

    /// Where this registry's plugins report.
    #[must_use]
    pub fn events(&self) -> &EventSink {
        &self.events
    }

    /// Logs `event` and hands it to the event sink.
    pub fn emit(&self, event: PluginEvent) {
        event.emit(&self.events);
    }
}
