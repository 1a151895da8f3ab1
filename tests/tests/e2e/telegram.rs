//! A Telegram bot against a stand-in of the Bot API built from its documented shapes:
//! a message from an allowed user is a turn answered in a draft the bot edits; the
//! gated call it makes is posted with approval buttons; a press by someone not on
//! `reviewers` decides nothing, a reviewer's press approves, and the final answer
//! replaces the draft. A user not on `allowFrom` is turned away.

use facio_tests::model::Reply;
use facio_tests::telegram::TelegramStandIn;
use reqwest::Method;
use serde_json::{Value, json};

use crate::hitl::TOKEN;
use crate::support::{Env, PATIENCE};

const BOT_TOKEN: &str = "123456:test-bot-token-never-logged";

#[tokio::test]
async fn a_telegram_conversation_with_an_approval_by_inline_button() {
    let telegram = TelegramStandIn::start(BOT_TOKEN).await.unwrap();
    let mut env = Env::new(vec![
        Reply::tool_call("exec", json!({"command": "echo from-telegram > tg.txt"})),
        Reply::text("Done: tg.txt is written."),
    ])
    .await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set(
        "/channels",
        json!({"telegram": {"bot": {
            "botToken": BOT_TOKEN, "apiBase": telegram.base_url,
            "allowFrom": ["alice"], "reviewers": ["quinn"], "pollTimeoutS": 1,
        }}}),
    );
    let gateway = env.serve().await;

    // A stranger is turned away; the model never hears of it.
    telegram.user_says(7, "mallory", "run something");
    let refused = telegram
        .wait_for(PATIENCE, |calls| {
            calls
                .iter()
                .find(|(m, p)| m == "sendMessage" && p["chat_id"] == 7)
                .map(|(_, p)| p["text"].clone())
        })
        .await
        .expect("the stranger got an answer");
    assert!(refused.to_string().contains("not allowed"), "{refused}");
    assert!(env.model.requests().is_empty());

    telegram.user_says(42, "alice", "Write tg.txt please.");
    let card = telegram
        .wait_for(PATIENCE, |calls| {
            calls
                .iter()
                .find(|(m, p)| m == "sendMessage" && p.get("reply_markup").is_some())
                .map(|(_, p)| p.clone())
        })
        .await
        .expect("the review was posted with buttons");
    assert_eq!(card["chat_id"], 42, "{card}");
    assert!(card["text"].as_str().unwrap().contains("exec"), "{card}");
    let buttons = card["reply_markup"]["inline_keyboard"][0]
        .as_array()
        .unwrap()
        .clone();
    let approve = buttons
        .iter()
        .find(|b| {
            b["text"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase()
                .contains("approve")
        })
        .unwrap_or_else(|| panic!("an approve button: {buttons:?}"));
    let data = approve["callback_data"].as_str().unwrap().to_owned();
    assert!(data.len() <= 64, "callback_data fits Telegram's 64 bytes");
    let message = json!({"message_id": card["message_id"], "chat": {"id": 42, "type": "private"},
                         "date": 1_800_000_000, "text": card["text"]});
    assert!(
        !env.workspace().join("tg.txt").exists(),
        "nothing ran before a decision"
    );

    // Alice may talk to the bot but not approve; the call stays waiting.
    telegram.user_presses(42, "alice", &message, &data);
    let denied = telegram
        .wait_for(PATIENCE, |calls| {
            calls
                .iter()
                .find(|(m, _)| m == "answerCallbackQuery")
                .map(|(_, p)| p["text"].clone())
        })
        .await
        .expect("the press was answered");
    assert!(denied.to_string().contains("may not decide"), "{denied}");
    let (_, pending) = crate::support::management(
        &gateway,
        TOKEN,
        Method::GET,
        "/reviews?status=pending",
        None,
    )
    .await;
    assert_eq!(
        pending["reviews"].as_array().map(Vec::len),
        Some(1),
        "{pending}"
    );

    // The reviewer's press approves; the answer replaces the draft.
    telegram.user_presses(9, "quinn", &message, &data);
    let final_text = telegram
        .wait_for(PATIENCE, |calls| {
            calls
                .iter()
                .find(|(m, p)| {
                    m == "editMessageText"
                        && p["text"]
                            .as_str()
                            .is_some_and(|t| t.contains("Done: tg.txt"))
                })
                .map(|(_, p)| p.clone())
        })
        .await
        .expect("the answer was shown");
    assert_eq!(final_text["chat_id"], 42);
    let draft = telegram
        .calls()
        .iter()
        .find(|(m, p)| m == "sendMessage" && p["text"] == "…")
        .map(|(_, p)| p["message_id"].clone());
    assert_eq!(
        Some(final_text["message_id"].clone()),
        draft,
        "the draft itself was edited"
    );
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("tg.txt"))
            .unwrap()
            .trim(),
        "from-telegram"
    );
    let (_, decided) = crate::support::management(
        &gateway,
        TOKEN,
        Method::GET,
        "/audit?type=review_decided",
        None,
    )
    .await;
    assert_eq!(decided["events"][0]["actor"], "telegram:quinn", "{decided}");
    let (_, messages) = crate::support::management(
        &gateway,
        TOKEN,
        Method::GET,
        "/audit?type=channel_message",
        None,
    )
    .await;
    let senders: Vec<(Value, Value)> = messages["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["data"]["from"].clone(), e["data"]["accepted"].clone()))
        .collect();
    assert!(
        senders.contains(&(json!("mallory"), json!(false))),
        "{senders:?}"
    );
    assert!(
        senders.contains(&(json!("alice"), json!(true))),
        "{senders:?}"
    );
    // The bot token never shows in the node's output.
    assert!(!gateway.process.output().contains(BOT_TOKEN));
}
