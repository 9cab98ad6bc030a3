//! One charger's WebSocket: read a frame, answer it; send the calls queued for the charger one at
//! a time; notice silence. Nothing a charger sends ends the task except closing the socket or
//! going silent: a broken frame is answered with a CALLERROR and the next one is read.

use std::collections::VecDeque;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::time::{Instant, sleep_until};
use uuid::Uuid;
use voltplan_ocpp::{ErrorCode, Frame, Schemas, Version};
use voltplan_store::OrgScope;
use voltplan_store::ocpp::CommandStatus;

use super::Outbound;
use super::inbound::{self, Answer};
use super::session::Session;
use crate::state::AppState;

/// A call this connection sent and waits on.
struct Pending {
    message_id: String,
    action: String,
    /// The `ocpp_commands` row, or `None` for the connection's own calls (after a boot).
    command_id: Option<String>,
    deadline: Instant,
}

pub(super) async fn run(
    socket: WebSocket,
    state: AppState,
    org: OrgScope,
    wallbox_id: Uuid,
    charge_point_id: String,
) {
    let hub = state.0.ocpp.clone();
    hub.start_dispatcher(&state);
    let now = state.0.clock.now();
    let (link, mut charger) = match state.0.store.open_charger_link(org, wallbox_id).await {
        Ok(opened) => opened,
        Err(error) => {
            tracing::error!(%error, %charge_point_id, "OCPP: could not open the charger's link");
            return;
        }
    };
    charger.connected = true;
    charger.replica = Some(hub.replica.clone());
    charger.connected_at = Some(now);
    charger.last_seen_at = Some(now);
    let (serial, mut queue) = hub.register(wallbox_id);
    let mut session = Session {
        state: state.clone(),
        link,
        charger,
        charge_point_id,
        schemas: Schemas::v16(),
        own_calls: VecDeque::new(),
    };
    if let Err(error) = session.save(true).await {
        tracing::error!(%error, charge_point_id = %session.charge_point_id, "OCPP: could not mark the charger connected");
    }
    tracing::info!(charge_point_id = %session.charge_point_id, %wallbox_id, "OCPP charger connected");
    metrics::gauge!("voltplan_ocpp_connections").increment(1.0);

    let config = state.0.config.ocpp.clone();
    let (mut sink, mut stream) = socket.split();
    let mut waiting: VecDeque<Outbound> = VecDeque::new();
    let mut pending: Option<Pending> = None;
    let mut silent_until = Instant::now() + config.idle_timeout;
    loop {
        // Send the next call when none is outstanding: the connection's own first, then queued.
        if pending.is_none() {
            let next = if let Some((action, payload)) = session.own_calls.pop_front() {
                Some((action, payload, None))
            } else if let Some(Outbound::Queued(command)) = waiting.pop_front() {
                match serde_json::from_str::<Map<String, Value>>(&command.payload) {
                    Ok(payload) => Some((command.action, payload, Some(command.id))),
                    Err(error) => {
                        tracing::error!(%error, command_id = %command.id, "OCPP: a queued call's payload is not a JSON object");
                        answer_command(&session, &command.id, CommandStatus::Failed, None).await;
                        continue;
                    }
                }
            } else {
                None
            };
            if let Some((action, payload, command_id)) = next {
                // What we send is held to the schema too: a call that breaks it fails unsent.
                let payload_value = Value::Object(payload);
                if let Err(violation) = session.schemas.check_request(&action, &payload_value) {
                    tracing::error!(%action, cause = %violation.description, "OCPP: a call to the charger breaks its schema; not sent");
                    if let Some(id) = &command_id {
                        let detail =
                            serde_json::json!({"error": violation.description}).to_string();
                        answer_command(&session, id, CommandStatus::Failed, Some(&detail)).await;
                    }
                    continue;
                }
                let Value::Object(payload) = payload_value else {
                    continue;
                };
                let message_id = Uuid::new_v4().to_string();
                let frame = Frame::Call {
                    id: message_id.clone(),
                    action: action.clone(),
                    payload,
                };
                if sink
                    .send(Message::Text(frame.to_text().into()))
                    .await
                    .is_err()
                {
                    break;
                }
                pending = Some(Pending {
                    message_id,
                    action,
                    command_id,
                    deadline: Instant::now() + config.call_timeout,
                });
                continue;
            }
        }
        let call_deadline = pending.as_ref().map(|p| p.deadline);
        tokio::select! {
            message = stream.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        // OCPP-J is text only (1.6 §3.2); say so and carry on.
                        let error = Frame::error(
                            voltplan_ocpp::frame::UNKNOWN_MESSAGE_ID,
                            ErrorCode::RpcFrameworkError,
                            Version::V16,
                            "OCPP-J messages are text frames",
                        );
                        if sink.send(Message::Text(error.to_text().into())).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        silent_until = Instant::now() + config.idle_timeout;
                        continue;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                };
                silent_until = Instant::now() + config.idle_timeout;
                let reply = receive(&mut session, &text, &mut pending).await;
                match reply {
                    Received::Reply(frame) => {
                        if sink.send(Message::Text(frame.to_text().into())).await.is_err() {
                            break;
                        }
                    }
                    Received::Nothing => {}
                    Received::Superseded => {
                        tracing::info!(charge_point_id = %session.charge_point_id, "OCPP: a newer connection took over; closing this one");
                        break;
                    }
                }
            }
            outbound = queue.recv() => {
                match outbound {
                    Some(outbound) => waiting.push_back(outbound),
                    // The hub dropped this connection (a newer one replaced it).
                    None => break,
                }
            }
            () = sleep_until(call_deadline.unwrap_or_else(far_future)), if call_deadline.is_some() => {
                if let Some(timed_out) = pending.take() {
                    tracing::warn!(charge_point_id = %session.charge_point_id, action = %timed_out.action, "OCPP: no answer in time");
                    if let Some(id) = &timed_out.command_id {
                        answer_command(&session, id, CommandStatus::Failed, Some("{\"error\":\"no answer in time\"}")).await;
                    }
                }
            }
            () = sleep_until(silent_until) => {
                tracing::info!(charge_point_id = %session.charge_point_id, "OCPP: charger silent too long; closing");
                break;
            }
        }
    }

    // The calls this connection took but did not finish go back to nobody: they fail, and the
    // worker decides again (a charger that reconnects gets fresh ones).
    if let Some(p) = pending.take()
        && let Some(id) = p.command_id
    {
        answer_command(
            &session,
            &id,
            CommandStatus::Failed,
            Some("{\"error\":\"connection closed\"}"),
        )
        .await;
    }
    // Calls handed over but not yet read fail too: nobody else would ever send them.
    queue.close();
    while let Ok(outbound) = queue.try_recv() {
        waiting.push_back(outbound);
    }
    for Outbound::Queued(command) in waiting {
        answer_command(
            &session,
            &command.id,
            CommandStatus::Failed,
            Some("{\"error\":\"connection closed\"}"),
        )
        .await;
    }
    hub.deregister(wallbox_id, serial);
    metrics::gauge!("voltplan_ocpp_connections").decrement(1.0);
    let now = state.0.clock.now();
    session.charger.connected = false;
    session.charger.disconnected_at = Some(now);
    if let Err(error) = session.save(true).await {
        tracing::error!(%error, charge_point_id = %session.charge_point_id, "OCPP: could not mark the charger disconnected");
    }
    tracing::info!(charge_point_id = %session.charge_point_id, "OCPP charger disconnected");
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

enum Received {
    Reply(Frame),
    Nothing,
    Superseded,
}

async fn answer_command(
    session: &Session,
    id: &str,
    status: CommandStatus,
    response: Option<&str>,
) {
    let now = session.state.0.clock.now();
    if let Err(error) = session
        .state
        .0
        .store
        .answer_ocpp_command(id, status, response, now)
        .await
    {
        tracing::error!(%error, command_id = %id, "OCPP: could not record a call's outcome");
    }
}

/// Reads one text frame: a CALL is handled and answered; an answer completes the pending call.
async fn receive(session: &mut Session, text: &str, pending: &mut Option<Pending>) -> Received {
    let version = session.schemas.version();
    let frame = match Frame::parse(text) {
        Ok(frame) => frame,
        Err(error) => {
            metrics::counter!("voltplan_ocpp_frames_refused_total").increment(1);
            return match error.answer_to {
                Some(id) => {
                    Received::Reply(Frame::error(&id, error.code, version, &error.description))
                }
                None => Received::Nothing,
            };
        }
    };
    session.charger.last_seen_at = Some(session.state.0.clock.now());
    match frame {
        Frame::Call {
            id,
            action,
            payload,
        } => match inbound::handle(session, &action, Value::Object(payload)).await {
            Answer::Result(payload) => Received::Reply(Frame::CallResult { id, payload }),
            Answer::Error(code, description) => {
                metrics::counter!("voltplan_ocpp_frames_refused_total").increment(1);
                Received::Reply(Frame::error(&id, code, version, &description))
            }
            Answer::Superseded => Received::Superseded,
        },
        Frame::CallResult { id, payload } => {
            let Some(call) = pending.take_if(|p| p.message_id == id) else {
                tracing::warn!(charge_point_id = %session.charge_point_id, message_id = %id, "OCPP: an answer to no outstanding call");
                return Received::Nothing;
            };
            let status = match session.schemas.check_response(&call.action, &payload) {
                Err(violation) => {
                    tracing::warn!(charge_point_id = %session.charge_point_id, action = %call.action, cause = %violation.description, "OCPP: the charger's answer breaks its schema");
                    CommandStatus::Failed
                }
                Ok(()) => {
                    inbound::answered(session, &call.action, &payload).await;
                    match payload.get("status").and_then(Value::as_str) {
                        None | Some("Accepted") => CommandStatus::Accepted,
                        Some(_) => CommandStatus::Rejected,
                    }
                }
            };
            if let Some(command_id) = &call.command_id {
                answer_command(session, command_id, status, Some(&payload.to_string())).await;
            }
            Received::Nothing
        }
        Frame::CallError {
            id,
            code,
            description,
            details,
        } => {
            let Some(call) = pending.take_if(|p| p.message_id == id) else {
                return Received::Nothing;
            };
            tracing::info!(charge_point_id = %session.charge_point_id, action = %call.action, %code, %description, "OCPP: the charger refused a call");
            if let Some(command_id) = &call.command_id {
                let response = serde_json::json!({"errorCode": code, "errorDescription": description, "errorDetails": details});
                answer_command(
                    session,
                    command_id,
                    CommandStatus::Failed,
                    Some(&response.to_string()),
                )
                .await;
            }
            Received::Nothing
        }
    }
}
