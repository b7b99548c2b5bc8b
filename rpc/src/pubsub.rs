//! `eth_subscribe` over WebSocket: `newHeads`, `logs` (with a filter) and
//! `newPendingTransactions`, fed by the node's chain events.

use crate::{backend::ChainEvent, convert, Ctx};
use alloy_rpc_types_eth::Filter;
use jsonrpsee::{PendingSubscriptionSink, RpcModule, SubscriptionMessage};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

fn message(value: &impl serde::Serialize) -> Option<SubscriptionMessage> {
    serde_json::value::to_raw_value(value).ok().map(Into::into)
}

/// Registers `eth_subscribe` / `eth_unsubscribe`.
pub fn register(module: &mut RpcModule<Ctx>) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    module.register_subscription(
        "eth_subscribe",
        "eth_subscription",
        "eth_unsubscribe",
        |params, pending: PendingSubscriptionSink, ctx, _| async move {
            let mut seq = params.sequence();
            let kind: String = match seq.next() {
                Ok(k) => k,
                Err(e) => {
                    pending.reject(e).await;
                    return;
                }
            };
            let filter: Option<Filter> = if kind == "logs" {
                match seq.optional_next::<Value>() {
                    Ok(Some(v)) => match serde_json::from_value(v) {
                        Ok(f) => Some(f),
                        Err(e) => {
                            pending
                                .reject(crate::error::invalid_params(format!(
                                    "bad log filter: {e}"
                                )))
                                .await;
                            return;
                        }
                    },
                    Ok(None) => Some(Filter::default()),
                    Err(e) => {
                        pending.reject(e).await;
                        return;
                    }
                }
            } else {
                None
            };
            if !matches!(
                kind.as_str(),
                "newHeads" | "logs" | "newPendingTransactions"
            ) {
                pending
                    .reject(crate::error::invalid_params(format!(
                        "unknown subscription {kind}"
                    )))
                    .await;
                return;
            }
            let mut events = ctx.backend.subscribe();
            let Ok(sink) = pending.accept().await else {
                return;
            };
            loop {
                let event = tokio::select! {
                    e = events.recv() => e,
                    _ = sink.closed() => return,
                };
                let event = match event {
                    Ok(e) => e,
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                };
                let messages: Vec<SubscriptionMessage> = match (&event, kind.as_str()) {
                    (ChainEvent::Block(b), "newHeads") => {
                        message(&convert::header(b)).into_iter().collect()
                    }
                    (ChainEvent::Block(b), "logs") => {
                        let filter = filter.as_ref();
                        convert::block_logs(b)
                            .into_iter()
                            .filter(|l| filter.is_none_or(|f| f.matches(&l.inner)))
                            .filter_map(|l| message(&l))
                            .collect()
                    }
                    (ChainEvent::PendingTx(h), "newPendingTransactions") => {
                        message(h).into_iter().collect()
                    }
                    _ => vec![],
                };
                for m in messages {
                    if sink.send(m).await.is_err() {
                        return;
                    }
                }
            }
        },
    )?;
    Ok(())
}
