//! Reviewers who are who they say they are: the inbox signs them in with OpenID
//! Connect (code flow with PKCE) against a stand-in provider, decisions record the
//! verified subject whatever name a request claims, and the management token may no
//! longer decide under a typed name. Attacks: replayed codes, a callback without its
//! sign-in or with another's state, tokens forged with another key, for another
//! audience, expired, unsigned or HMAC-signed, and identities the node must not admit.

use std::collections::HashMap;
use std::time::Duration;

use facio_tests::identity::{IdentityProvider, User};
use facio_tests::model::Reply;
use serde_json::{Value, json};

use crate::hitl::{TOKEN, finished, nth_review};
use crate::support::{Env, Gateway, management};

const CLIENT_ID: &str = "facio-inbox";
const CLIENT_SECRET: &str = "idp client/secret+1";

fn user(subject: &str, tenant: &str, roles: &[&str]) -> User {
    User {
        subject: subject.to_owned(),
        tenant: tenant.to_owned(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
    }
}

/// A provider with alice (a reviewer), bob (no Facio role) and carol (a tenant the
/// node does not have), and a node that signs reviewers in with it.
async fn setup(replies: Vec<Reply>) -> (IdentityProvider, Env, Gateway) {
    let idp = IdentityProvider::start(
        CLIENT_ID,
        Some(CLIENT_SECRET),
        vec![
            user("alice", "default", &["reviewer"]),
            user("bob", "default", &["viewer"]),
            user("carol", "elsewhere", &["reviewer"]),
        ],
    )
    .await
    .expect("start the identity provider");
    let mut env = Env::new(replies).await;
    env.set("/api/managementToken", json!(TOKEN));
    env.set(
        "/auth",
        json!({"oidc": {"issuer": idp.issuer(), "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}}),
    );
    let gateway = env.serve().await;
    idp.allow_redirect(&format!("{}/inbox/callback", gateway.url));
    (idp, env, gateway)
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn location(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 303, "a redirect: {response:?}");
    response.headers()["location"].to_str().unwrap().to_owned()
}

fn query(url: &str) -> HashMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A begun sign-in: the provider's authorize URL and the cookie the node set.
struct Begun {
    authorize: String,
    cookie: String,
}

async fn begin(gateway: &Gateway) -> Begun {
    let response = no_redirects()
        .get(format!("{}/inbox/signin", gateway.url))
        .send()
        .await
        .unwrap();
    let authorize = location(&response);
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for part in ["HttpOnly", "SameSite=Lax", "Path=/inbox", "Max-Age=600"] {
        assert!(set_cookie.contains(part), "{part} in {set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    Begun { authorize, cookie }
}

/// Signs `subject` in at the provider's page; returns the callback URL it sends the
/// browser back to.
async fn at_provider(begun: &Begun, subject: &str) -> String {
    let page = no_redirects().get(&begun.authorize).send().await.unwrap();
    assert_eq!(page.status(), 200, "the provider shows its sign-in page");
    let mut form = query(&begun.authorize);
    form.insert("subject".into(), subject.into());
    let action = begun.authorize.split('?').next().unwrap().to_owned();
    let back = no_redirects()
        .post(action)
        .form(&form)
        .send()
        .await
        .unwrap();
    location(&back)
}

/// Follows the provider's answer back to the node with `cookie`; returns where the
/// node sends the page (`/inbox#token=…` or `/inbox#signin-error=…`).
async fn callback(callback: &str, cookie: Option<&str>) -> String {
    let mut request = no_redirects().get(callback);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let target = location(&response);
    let cleared = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("facio_signin=;") && cleared.contains("Max-Age=0"),
        "the sign-in cookie is spent whatever happened: {cleared}"
    );
    target
}

fn token_of(target: &str) -> String {
    target
        .strip_prefix("/inbox#token=")
        .unwrap_or_else(|| panic!("signed in: {target}"))
        .to_owned()
}

fn error_of(target: &str) -> String {
    let encoded = target
        .strip_prefix("/inbox#signin-error=")
        .unwrap_or_else(|| panic!("refused: {target}"));
    query(&format!("http://x/?e={encoded}"))["e"].clone()
}

async fn sign_in(gateway: &Gateway, subject: &str) -> String {
    let begun = begin(gateway).await;
    let back = at_provider(&begun, subject).await;
    callback(&back, Some(&begun.cookie)).await
}

/// [`setup`] with a run waiting on the review of an `exec` call writing `word`.
async fn gated(word: &str, session: &str) -> (IdentityProvider, Env, Gateway, String, String) {
    let (idp, env, gateway) = setup(vec![
        Reply::tool_call(
            "exec",
            json!({"command": format!("echo {word} >> proof.txt")}),
        ),
        Reply::text("Written."),
    ])
    .await;
    let (_, run) = management(
        &gateway,
        TOKEN,
        reqwest::Method::POST,
        &format!("/sessions/{session}/messages?wait=20"),
        Some(json!({"content": "write the proof"})),
    )
    .await;
    let run_id = run["runId"].as_str().unwrap().to_owned();
    let review = nth_review(&gateway, &run_id, 1).await;
    (idp, env, gateway, run_id, review)
}

#[tokio::test]
async fn a_reviewer_signed_in_with_oidc_decides_under_the_verified_subject() {
    let (idp, _env, gateway, run_id, review) = gated("signed", "oidc:1").await;

    // The authorization request is a code flow with PKCE S256, a state and a nonce.
    let begun = begin(&gateway).await;
    assert!(
        begun
            .authorize
            .starts_with(&format!("{}/authorize?", idp.issuer()))
    );
    let asked = query(&begun.authorize);
    assert_eq!(asked["response_type"], "code");
    assert_eq!(asked["client_id"], CLIENT_ID);
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(
        asked["redirect_uri"],
        format!("{}/inbox/callback", gateway.url)
    );
    assert!(asked["scope"].split(' ').any(|s| s == "openid"));
    for key in ["state", "nonce", "code_challenge"] {
        assert!(
            asked[key].len() >= 43,
            "{key} carries 256 random bits: {asked:?}"
        );
    }
    assert!(
        !begun
            .authorize
            .contains(begun.cookie.split('.').nth(1).unwrap()),
        "the PKCE verifier never leaves the browser's cookie"
    );
    let back = at_provider(&begun, "alice").await;
    let target = callback(&back, Some(&begun.cookie)).await;
    let alice = token_of(&target);
    let redeemed = idp.token_requests();
    assert_eq!(redeemed.len(), 1, "{redeemed:?}");
    assert_eq!(
        redeemed[0]["clientAuth"], "client_secret_basic",
        "{redeemed:?}"
    );
    assert_eq!(redeemed[0]["grant_type"], "authorization_code");
    assert!(redeemed[0]["code_verifier"].as_str().unwrap().len() >= 43);

    // The ID token is a bearer token of the management API, naming alice.
    let (status, me) = management(&gateway, &alice, reqwest::Method::GET, "/health", None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["subject"].as_str(), me["tenant"].as_str()),
        (Some("alice"), Some("default"))
    );
    assert_eq!(me["roles"], json!(["reviewer"]));

    // The shared token may not decide under a typed name any more; nothing is decided.
    let (status, refused) = crate::support::decide(
        &gateway,
        TOKEN,
        &review,
        json!({"response": {"selectedOption": "approve"}, "reviewer": "alice"}),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("typed reviewer name"),
        "{refused}"
    );
    let (_, still) = management(
        &gateway,
        TOKEN,
        reqwest::Method::GET,
        &format!("/reviews/{review}"),
        None,
    )
    .await;
    assert_eq!(still["status"], "pending", "{still}");

    // Alice decides; the name her request claims is not what is recorded.
    let (status, decided) = crate::support::decide(
        &gateway,
        &alice,
        &review,
        json!({"response": {"selectedOption": "approve"}, "reviewer": "mallory"}),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["decision"]["reviewer"], "alice", "{decided}");
    let run = finished(&gateway, &run_id).await;
    assert_eq!(run["status"], "completed", "{run}");
    let (_, audit) = management(
        &gateway,
        TOKEN,
        reqwest::Method::GET,
        "/audit?type=review_decided",
        None,
    )
    .await;
    let events = audit["events"].as_array().expect("audit events");
    assert!(
        events.iter().any(|e| e.to_string().contains("\"alice\""))
            && !audit.to_string().contains("mallory"),
        "the audit records the verified subject only: {audit}"
    );

    // A code is good once: the same callback again is refused by the provider.
    let replayed = error_of(&callback(&back, Some(&begun.cookie)).await);
    assert!(replayed.contains("invalid_grant"), "{replayed}");
}

#[tokio::test]
async fn sign_ins_and_tokens_the_node_must_not_accept_are_refused_with_their_reason() {
    let (idp, _env, gateway) = setup(vec![Reply::text("unused")]).await;

    // A callback this browser did not begin (no cookie), or one carrying another
    // sign-in's state: a login CSRF is refused before the code is redeemed.
    let first = begin(&gateway).await;
    let back = at_provider(&first, "alice").await;
    let no_cookie = error_of(&callback(&back, None).await);
    assert!(no_cookie.contains("began no sign-in"), "{no_cookie}");
    let other = begin(&gateway).await;
    let swapped = error_of(&callback(&back, Some(&other.cookie)).await);
    assert!(swapped.contains("state differs"), "{swapped}");
    assert!(
        idp.token_requests().is_empty(),
        "no code was redeemed for a refused callback"
    );

    // The provider's refusal is shown, not followed.
    let refused = error_of(
        &callback(
            &format!(
                "{}/inbox/callback?error=access_denied&error_description=the+user+said+no&state=x",
                gateway.url
            ),
            Some(&first.cookie),
        )
        .await,
    );
    assert!(
        refused.contains("access_denied: the user said no"),
        "{refused}"
    );

    // Identities the node does not admit: no Facio role, an unknown tenant.
    let bob = error_of(&sign_in(&gateway, "bob").await);
    assert!(bob.contains("grants no Facio role"), "{bob}");
    let carol = error_of(&sign_in(&gateway, "carol").await);
    assert!(carol.contains("tenant \"elsewhere\""), "{carol}");

    // Tokens that claim the provider as issuer but must not pass.
    let alice = user("alice", "default", &["reviewer", "admin"]);
    let good = idp.claims(&alice, Duration::from_secs(300));
    let refused = |token: String| {
        let gateway = &gateway;
        async move {
            let (status, body) =
                management(gateway, &token, reqwest::Method::GET, "/reviews", None).await;
            assert_eq!(status, 401, "{body}");
            body["error"]["message"].as_str().unwrap().to_owned()
        }
    };
    // Signed by another key under the provider's key id.
    let forger =
        jsonwebtoken::EncodingKey::from_rsa_pem(&facio_tests::identity::rsa_key_pem().unwrap())
            .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(idp.kid().to_owned());
    let forged = jsonwebtoken::encode(&header, &good, &forger).unwrap();
    assert!(refused(forged).await.contains("signature does not verify"));
    // A key id the provider never published (the node refetches the keys once).
    header.kid = Some("made-up".into());
    let unknown = jsonwebtoken::encode(&header, &good, &forger).unwrap();
    assert!(refused(unknown).await.contains("holds no key \"made-up\""));
    // For another client.
    let mut other_audience = good.clone();
    other_audience["aud"] = json!("another-client");
    assert!(
        refused(idp.sign(&other_audience))
            .await
            .contains("audience")
    );
    // Several audiences without us as the authorized party.
    let mut shared = good.clone();
    shared["aud"] = json!([CLIENT_ID, "another-client"]);
    shared["azp"] = json!("another-client");
    assert!(refused(idp.sign(&shared)).await.contains("audience"));
    // Expired.
    let mut expired = good.clone();
    expired["exp"] = json!(good["iat"].as_u64().unwrap() - 600);
    assert!(refused(idp.sign(&expired)).await.contains("expired"));
    // Unsigned, and HMAC-signed with the client secret as key.
    let claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        good.to_string(),
    );
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}.");
    assert!(refused(none).await.contains("alg \"none\""));
    let hmac = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &good,
        &jsonwebtoken::EncodingKey::from_secret(CLIENT_SECRET.as_bytes()),
    )
    .unwrap();
    assert!(refused(hmac).await.contains("alg \"HS256\""));

    // The one that is well made passes.
    let (status, body) = management(
        &gateway,
        &idp.sign(&good),
        reqwest::Method::GET,
        "/reviews",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_reviewer_signs_in_to_the_inbox_in_chromium_and_approves_as_herself() {
    let (idp, _env, gateway, run_id, review) = gated("browser", "oidc:browser").await;
    let shots = crate::inbox::screenshots("oidc-sign-in");
    let report = crate::inbox::browser(
        "inbox_signin.mjs",
        &[
            &gateway.url,
            idp.issuer(),
            "alice",
            &review,
            shots.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(report["nameFieldShown"], false, "no name to type: {report}");
    assert_eq!(report["providerPage"], true, "{report}");
    assert_eq!(report["whoami"], "Signed in as alice", "{report}");
    assert_eq!(
        report["url"],
        format!("{}/inbox", gateway.url),
        "the token is wiped from the address bar: {report}"
    );
    assert_eq!(report["signInShown"], false, "{report}");
    assert_eq!(
        report["storage"],
        json!({"session": true, "local": []}),
        "kept for the tab only: {report}"
    );
    assert!(
        !report["cookies"]
            .as_array()
            .unwrap()
            .contains(&json!("facio_signin")),
        "the sign-in cookie is gone: {report}"
    );
    assert_eq!(report["status"], "decided", "{report}");
    assert!(
        report["detail"].as_str().unwrap().contains("by alice"),
        "{report}"
    );
    assert_eq!(report["afterSignOut"], Value::Null, "{report}");
    assert_eq!(
        report["seen"],
        json!({"outside": [], "dialogs": [], "errors": []}),
        "{report}"
    );
    let (_, decided) = management(
        &gateway,
        TOKEN,
        reqwest::Method::GET,
        &format!("/reviews/{review}"),
        None,
    )
    .await;
    assert_eq!(decided["decision"]["reviewer"], "alice", "{decided}");
    assert_eq!(finished(&gateway, &run_id).await["status"], "completed");
}
