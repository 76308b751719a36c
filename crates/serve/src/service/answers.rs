//! The run's answers ([`cepheid_runtime::Answers`]): each request the
//! engine took (or did not), on the run's thread in the log's order,
//! turned into the API's answer and handed to the request waiting for it
//! (none on a replay: then it is kept for `GET /v1/decisions/{id}`).

use std::sync::Arc;

use cepheid_engine::engine::{Answer, Request};
use cepheid_engine::{Engine, Record, Value};
use cepheid_runtime::Answers;

use super::note::Note;
use super::{Reply, Shared, Waiter};
use crate::decider::{ApiError, ErrorCode};

pub(crate) struct ServeAnswers {
    pub(crate) shared: Arc<Shared>,
}

/// The id of a request as the client gave it.
pub(crate) fn event_id(id: &Value) -> Arc<str> {
    match id {
        Value::Str(s) => s.clone(),
        other => other.to_string().into(),
    }
}

impl Answers for ServeAnswers {
    fn taking(&mut self, request: &mut Request) {
        if request.dry_run {
            return;
        }
        // (the note's first 8 bytes are its seq: `note.rs`)
        let Some(seq) = (request.note.get(..8)).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
            return;
        };
        #[cfg(test)]
        self.shared.holds.taking.hold();
        if self.shared.taking(u64::from_le_bytes(seq)) {
            // (its client was answered the fallback at its deadline: the
            // engine remembers it degraded, as a replay takes it)
            if let Some(mut note) = Note::decode(&request.note) {
                note.degraded = true;
                request.note = note.encode();
            }
        }
    }

    fn start(&mut self, engine: &Engine<Record>) {
        self.shared.scenes_of(engine);
        // (what was answered before the checkpoint the run resumed from)
        for (id, remembered) in engine.remembered_requests() {
            let Some(note) = Note::decode(&remembered.note) else {
                continue;
            };
            if let (true, Some(decision)) = (note.decide, remembered.decisions.first()) {
                let body = self
                    .shared
                    .body(decision, &note, &event_id(id), false, false);
                self.shared.store(note.seq, remembered.at, &body);
            }
        }
    }

    fn answer(&mut self, request: &Request, answer: &Answer) {
        let Some(note) = Note::decode(&request.note) else {
            return;
        };
        let id = event_id(&request.id);
        let shared = &self.shared;
        if note.dry_run {
            let reply = self.reply(&note, &id, answer, true);
            shared.answer_dry(note.seq, reply);
            return;
        }
        #[cfg(test)]
        if note.decide {
            shared.holds.answering.hold();
        }
        let waiter = shared.take_waiter(note.seq);
        let explain = matches!(&waiter, Some(Waiter::Decide { explain: true, .. }));
        let reply = self.reply(&note, &id, answer, explain);
        match waiter {
            Some(Waiter::Decide { tx, .. }) => {
                let _ = tx.send(reply);
            }
            Some(Waiter::Events(batch)) => batch.took(reply),
            // (answered degraded, at admission or at its deadline; or a
            // replay: kept for `GET /v1/decisions/{id}`)
            Some(Waiter::Answered | Waiter::Degraded) | None => {
                if let Reply::Body(body) = &reply {
                    if !body.repeated {
                        shared.store(note.seq, body.stamp, body);
                    }
                }
            }
        }
    }
}

impl ServeAnswers {
    fn reply(&self, note: &Note, id: &Arc<str>, answer: &Answer, explain: bool) -> Reply {
        reply(&self.shared, note, id, answer, explain)
    }
}

/// The answer to the request of `note` (event `id`) the engine answered
/// `answer`.
pub(crate) fn reply(
    shared: &Shared,
    note: &Note,
    id: &Arc<str>,
    answer: &Answer,
    explain: bool,
) -> Reply {
    {
        match answer {
            Answer::Taken { decisions, at } => match (note.decide, decisions.first()) {
                (true, Some(decision)) => {
                    Reply::Body(shared.body(decision, note, id, false, explain))
                }
                (true, None) => Reply::Error(ApiError {
                    status: 500,
                    code: ErrorCode::Unavailable,
                    message: format!(
                        "event `{id}` was taken at {at} but its scene made no decision"
                    ),
                    field: None,
                    retry_after: None,
                }),
                (false, _) => Reply::Recorded { repeated: false },
            },
            Answer::Repeated(first) => {
                let Some(before) = Note::decode(&first.note) else {
                    return Reply::Error(conflict(id, "event_id"));
                };
                if let Some(field) = before.differs(note) {
                    shared.counters.conflicts.inc();
                    return Reply::Error(conflict(id, &field));
                }
                shared.counters.repeated.inc();
                if let Some(condition) = &first.refused {
                    return Reply::Error(not_in_scene(note, id, condition));
                }
                match (before.decide, first.decisions.first()) {
                    (true, Some(decision)) => {
                        Reply::Body(shared.body(decision, &before, id, true, explain))
                    }
                    (true, None) => Reply::Error(conflict(id, "event_id")),
                    (false, _) => Reply::Recorded { repeated: true },
                }
            }
            Answer::NotInScene { condition, .. } => {
                shared.counters.not_in_scene.inc();
                Reply::Error(not_in_scene(note, id, condition))
            }
            Answer::UnknownScene => Reply::Error(ApiError {
                status: 404,
                code: ErrorCode::UnknownScene,
                message: format!("event `{id}` names a scene the rules in force no longer have"),
                field: Some("scene".into()),
                retry_after: None,
            }),
            Answer::NotEvaluated(why) => Reply::Error(ApiError {
                status: 503,
                code: ErrorCode::Unavailable,
                message: format!("the dry run of event `{id}` could not be made: {why}"),
                field: None,
                retry_after: Some(1),
            }),
            _ => Reply::Error(ApiError {
                status: 503,
                code: ErrorCode::Unavailable,
                message: format!("event `{id}`: an answer this service does not know"),
                field: None,
                retry_after: Some(1),
            }),
        }
    }
}

fn conflict(id: &str, field: &str) -> ApiError {
    ApiError {
        status: 409,
        code: ErrorCode::EventIdReused,
        message: format!(
            "event `{id}` was given before with another `{field}`: an event id is the idempotency key, one event's"
        ),
        field: Some(field.to_string()),
        retry_after: None,
    }
}

fn not_in_scene(note: &Note, id: &str, condition: &str) -> ApiError {
    let _ = note;
    ApiError {
        status: 422,
        code: ErrorCode::NotInScene,
        message: format!(
            "event `{id}` does not enter its scene: `{condition}` does not hold (it was recorded as an event of no scene)"
        ),
        field: Some("event".into()),
        retry_after: None,
    }
}

/// The answers of a replay of the log (`cepheid backtest --events
/// wal:DIR`): each decision request's answer as the service gave it, a
/// JSON line (`elapsed_us` 0), or its error as `{"event_id", "error"}`.
pub(crate) struct ReplayAnswers {
    pub(crate) shared: Arc<Shared>,
    pub(crate) out: std::sync::mpsc::Sender<Vec<u8>>,
}

impl Answers for ReplayAnswers {
    fn start(&mut self, engine: &Engine<Record>) {
        self.shared.scenes_of(engine);
    }

    fn answer(&mut self, request: &Request, answer: &Answer) {
        let Some(note) = Note::decode(&request.note) else {
            return;
        };
        if !note.decide || note.dry_run {
            return;
        }
        let id = event_id(&request.id);
        let line = match reply(&self.shared, &note, &id, answer, false) {
            Reply::Body(body) => serde_json::to_vec(&body),
            Reply::Error(e) => serde_json::to_vec(&serde_json::json!({
                "event_id": &*id,
                "decision_id": super::body::decision_id(note.seq),
                "error": {"status": e.status, "code": e.code, "message": e.message, "field": e.field},
            })),
            Reply::Recorded { .. } => return,
        };
        if let Ok(mut line) = line {
            line.push(b'\n');
            let _ = self.out.send(line);
        }
    }
}
