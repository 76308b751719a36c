//! Input read on the runtime's reader thread for a run that takes it on
//! a thread of its own ([`LiveInput`]): the workers' live input (standard
//! input or a followed file, read by one worker; a library user's
//! [`Source`] per worker), read and decoded as one engine's run reads its
//! input, each line taken through the run's [`Policy`].

use super::*;
use crate::driver::Handle;
use crate::Config;

/// Input read on a thread of the runtime's and taken on another (see the
/// module's documentation): [`LiveInput::read`] or
/// [`LiveInput::read_source`] start the reader thread, [`LiveInput::next`]
/// waits for what it reads (and for a [`Handle`]'s stops and reloads),
/// [`LiveInput::take`] gives each line of what it read as the run takes
/// it.
pub struct LiveInput {
    tx: Tx,
    rx: Receiver<Message>,
    policy: Policy,
    /// Tells the reader thread to go on after a control record.
    go_on: Option<SyncSender<()>>,
}

/// What a [`LiveInput`] heard ([`LiveInput::next`]).
pub enum Heard {
    /// Lines the reader thread read: [`LiveInput::take`] them.
    Lines(Lines),
    /// Stop ([`Handle::stop`], with its reason): the input did not end.
    Stop(String),
    /// Read the pattern paths again ([`Handle::reload`], or they changed:
    /// [`LiveInput::watch`]).
    Reload(Reload),
    /// What the decoder saw of the patterns' fields: once it decoded
    /// [`Config::field_warnings`] events, and at the end of the input.
    Seen(FieldsSeen),
    /// A [`Source`]'s lag per split ([`Source::lag`]).
    Lag(Vec<SplitLag>),
    /// The records of a [`Source`]'s rules stream waiting for event time,
    /// when that changed.
    RulesWaiting(Option<RulesWaiting>),
    /// A reference file of [`Config::lists`] changed
    /// ([`LiveInput::watch_lists`]): read them again.
    ListsChanged,
    /// A change of a list asked through the run's handle
    /// ([`Handle::add_to_list`], [`Handle::remove_from_list`]).
    List(crate::lists::ListRecord),
    /// The input ended (or could not be read, said in its last lines).
    End,
}

/// Lines the reader thread read, handed over in one go.
pub struct Lines(Batch);

impl Lines {
    /// Where a file is after them.
    pub fn at(&self) -> FilePosition {
        self.0.at
    }

    /// A [`Source`]'s position after them ([`Source::position_before`]).
    pub fn place(&self) -> Option<&Position> {
        self.0.place.as_ref()
    }

    /// Are they the first part of what a [`Source`] handed out in one
    /// read, cut after a control record (the batch's `partial`)? Then they
    /// have no place: the source's is after the whole read, which the
    /// next lines end, and no checkpoint may be taken between.
    pub fn partial(&self) -> bool {
        self.0.partial
    }

    /// A [`Source`]'s splits' watermarks after them.
    pub fn splits(&self) -> Option<&[Option<cepheid_engine::Timestamp>]> {
        self.0.splits.as_deref()
    }

    /// Was the input waiting for more after them (a pipe, the end of a
    /// followed file, a source caught up)? Then what they release should
    /// be written out at once.
    pub fn stalled(&self) -> bool {
        self.0.stalled
    }
}

impl LiveInput {
    /// Input whose lines the run takes with `policy`; nothing is read
    /// before [`LiveInput::read`] or [`LiveInput::read_source`].
    pub fn new(policy: Policy) -> LiveInput {
        let (tx, rx) = Tx::channel();
        LiveInput {
            tx,
            rx,
            policy,
            go_on: None,
        }
    }

    /// A handle that stops the input or asks for a reload, from any
    /// thread.
    pub fn handle(&self) -> Handle {
        Handle::new(self.tx.clone())
    }

    /// Watches the pattern files and folders `paths` as a run with
    /// [`Config::watch`] does (through their folders, debounced): each
    /// change is heard as a [`Heard::Reload`]. Lasts as long as the
    /// watch returned. `Err`: why it cannot, in the words one engine says
    /// it.
    pub fn watch(&self, paths: &[PathBuf]) -> Result<PatternWatch, String> {
        watch_patterns(paths, self.tx.clone())
    }

    /// Watches the reference files `paths` ([`Config::lists`]) as a run
    /// with [`Config::watch`] does: each change is heard as a
    /// [`Heard::ListsChanged`]. Lasts as long as the watch returned.
    /// `Err`: why it cannot, in the words one engine says it.
    pub fn watch_lists(&self, paths: &[PathBuf]) -> Result<PatternWatch, String> {
        #[cfg(feature = "watch")]
        {
            crate::reload::watch_for(paths, self.tx.clone(), || Message::ListsChanged)
                .map(PatternWatch::of)
                .map_err(|e| format!("warning: cannot watch the reference files of `Config::lists` ({e}); their lists stay as they were read"))
        }
        #[cfg(not(feature = "watch"))]
        {
            let _ = paths;
            Err("warning: cannot watch the reference files of `Config::lists` (built without the feature `watch`); their lists stay as they were read".to_string())
        }
    }

    /// Reads `config`'s input (standard input, or its file from `start`,
    /// followed or not) on a thread of its own, decoded over `fields` as
    /// one engine's run reads it: control records with JSON lines, a CSV
    /// file's header read first when it starts past it, what the decoder
    /// saw of the fields told after [`Config::field_warnings`] events;
    /// with `tails`, each batch's place in a file has its [`Tail`].
    /// `warn` hears what a followed file's watcher could not do. `Err`:
    /// the input could not be opened or read (nothing is started).
    pub fn read(
        &mut self,
        config: &Config,
        fields: &FieldTable,
        start: FilePosition,
        tails: bool,
        warn: &mut dyn FnMut(String),
    ) -> io::Result<()> {
        let path = config.input.path();
        let mut decoder = new_decoder(config, fields);
        if start.offset > 0 && config.format == cepheid_decode::Format::Csv {
            prime(&mut decoder, path)?;
        }
        let (input, _) = Opened::open(path, config.follow, start.offset, warn)?;
        let reading = reading(config, fields, decoder, start, tails, self.controls(config));
        spawn_reader(input, reading, self.tx.clone());
        Ok(())
    }

    /// Reads `source` on a thread of its own as one engine's run reads a
    /// [`Source`] (decoded over `fields`, its rules stream's records held
    /// until event time reaches them), with per-split watermarks: each
    /// split's largest time less [`Config::max_delay`] less 1 ms, idle
    /// splits left out after [`Config::idle_timeout`]; `resumed`, each
    /// split's watermark when the run resumed, and `emitted` the least
    /// of them then. With `places` each event is named by its place too
    /// ([`Source::describe_origin`], given to [`LiveInput::take`]'s
    /// caller): a run that writes decisions, whose position it is
    /// (`docs/decisions.md`, "The position").
    pub fn read_source(
        &mut self,
        source: Box<dyn Source>,
        config: &Config,
        fields: &FieldTable,
        (resumed, emitted): (
            Vec<Option<cepheid_engine::Timestamp>>,
            Option<cepheid_engine::Timestamp>,
        ),
        places: bool,
    ) {
        let decoder = new_decoder(config, fields);
        let start = FilePosition::default();
        let mut reading = reading(config, fields, decoder, start, false, self.controls(config));
        reading.timing.splits = Some(SplitTiming::of(config, resumed, emitted));
        reading.places = places;
        let source = Opened::Custom(Arc::new(std::sync::Mutex::new(source)));
        spawn_reader(source, reading, self.tx.clone());
    }

    /// With JSON lines, the reader thread waits after each control record
    /// until [`LiveInput::take`] has handed it on.
    fn controls(&mut self, config: &Config) -> Option<Receiver<()>> {
        if config.format != cepheid_decode::Format::JsonLines {
            return None;
        }
        let (go_on, wait) = std::sync::mpsc::sync_channel(1);
        self.go_on = Some(go_on);
        Some(wait)
    }

    /// From now on `wake` is called after each message its reader thread,
    /// its [`Handle`] or its watches send (once: a second call changes
    /// nothing): for a taker that looks with [`LiveInput::try_next`] when
    /// it is woken, between other work on its thread (a worker's source,
    /// woken by timely's activator), and looks at nothing while the input
    /// is quiet.
    pub fn wake_with(&self, wake: impl Fn() + Send + Sync + 'static) {
        self.tx.wake_with(Box::new(wake));
    }

    /// What the reader thread read next, a stop or a reload: waits for
    /// it. [`Heard::End`] once the reader thread has ended (or the input
    /// was never read).
    pub fn next(&self) -> Heard {
        loop {
            return match self.rx.recv() {
                Ok(Message::Batch(batch)) => Heard::Lines(Lines(batch)),
                Ok(Message::Stop(why)) => Heard::Stop(why),
                Ok(Message::Reload(why)) => Heard::Reload(why),
                Ok(Message::Seen(seen)) => Heard::Seen(seen),
                Ok(Message::Lag(lag)) => Heard::Lag(lag),
                Ok(Message::RulesWaiting(waiting)) => Heard::RulesWaiting(waiting),
                Ok(Message::ListsChanged) => Heard::ListsChanged,
                Ok(Message::List(record)) => Heard::List(record),
                Ok(Message::Checkpointed) => continue,
                Ok(Message::End) | Err(_) => Heard::End,
            };
        }
    }

    /// What [`LiveInput::next`] would give, without waiting for it
    /// (`None`: nothing yet): for input read elsewhere (a file's parts,
    /// read by the workers) whose readers look now and then for a
    /// [`Handle`]'s stops and reloads.
    pub fn try_next(&self) -> Option<Heard> {
        loop {
            return Some(match self.rx.try_recv().ok()? {
                Message::Batch(batch) => Heard::Lines(Lines(batch)),
                Message::Stop(why) => Heard::Stop(why),
                Message::Reload(why) => Heard::Reload(why),
                Message::Seen(seen) => Heard::Seen(seen),
                Message::Lag(lag) => Heard::Lag(lag),
                Message::RulesWaiting(waiting) => Heard::RulesWaiting(waiting),
                Message::ListsChanged => Heard::ListsChanged,
                Message::List(record) => Heard::List(record),
                Message::Checkpointed => continue,
                Message::End => Heard::End,
            });
        }
    }

    /// Each of `lines` as the run takes it: `take` is given its number (a
    /// line's in its file, a record's), what it is (`None`: a line that
    /// holds nothing, a blank one) and, for an event of a [`Source`] read
    /// with `places` ([`LiveInput::read_source`]), its place; and says
    /// whether to go on (false: the input ends there). After a control
    /// record the reader thread goes on decoding (with the fields of the
    /// rules it put in force, when `take` applied them).
    pub fn take(
        &self,
        lines: Lines,
        mut take: impl FnMut(u64, Option<Got>, Option<String>) -> bool,
    ) {
        let Batch {
            lines,
            places,
            mut source_error,
            ..
        } = lines.0;
        let mut places = places.into_iter().peekable();
        for (index, (line, entry)) in lines.into_iter().enumerate() {
            let mut place = match places.peek() {
                Some((i, _)) if *i == index => places.next().map(|(_, p)| p),
                _ => None,
            };
            let control = super::waits_after(&entry);
            // (an event's place is its name; another's, its messages')
            let named = match &entry {
                Ok(Entry::Item(Item::Event(..))) => place.take(),
                _ => None,
            };
            let got = self.policy.take(entry, || line, place);
            let go_on = take(line, Batch::typed(&mut source_error, got), named);
            if control {
                if let Some(tx) = &self.go_on {
                    let _ = tx.send(());
                }
            }
            if !go_on {
                return;
            }
        }
    }
}

/// How the reader thread reads `config`'s input: decoded by `decoder`
/// (each later file of a followed file by a fresh one over `fields`),
/// from `start`, with `tails`, waiting after each control record on
/// `controls`, telling what the decoder saw of the fields as
/// [`Config::field_warnings`] says, a [`Source`]'s records timed as
/// `config` says (without per-split watermarks: the caller's).
pub(crate) fn reading(
    config: &Config,
    fields: &FieldTable,
    decoder: Decoder,
    start: FilePosition,
    tails: bool,
    controls: Option<Receiver<()>>,
) -> Reading {
    let fresh = {
        let (config, fields) = (config.clone(), fields.clone());
        Box::new(move || new_decoder(&config, &fields))
    };
    Reading {
        origin: config.input.describe(),
        decoder,
        fresh,
        start,
        tails,
        controls,
        seen: SeenTold::new(config.field_warnings).with_batches(tails),
        timing: SourceTiming {
            record_time: config.time == crate::Time::Record,
            splits: None,
        },
        places: false,
    }
}

/// A decoder of `config`'s format and time over the fields `fields`,
/// watching the fields when their warnings are asked for.
pub(crate) fn new_decoder(config: &Config, fields: &FieldTable) -> Decoder {
    let decoder = match &config.time {
        crate::Time::Event { field } => Decoder::new(config.format, field, fields.clone()),
        // (a record's time is set from its source's, `SourceTiming`)
        crate::Time::Processing | crate::Time::Record => {
            Decoder::new(config.format, "ts", fields.clone()).without_time()
        }
    };
    match config.field_warnings {
        Some(after) => decoder.watch_fields(after),
        None => decoder,
    }
}
