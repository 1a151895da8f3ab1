use base64::Engine;

use super::*;
use crate::config::AuthConfig;

const SECRET: &str = "a-test-secret-that-is-long-enough-123";

fn verifier() -> Verifier {
    let config = AuthConfig {
        hs256_secret: Some(SECRET.into()),
        ..AuthConfig::default()
    };
    Verifier::from_config(&config).unwrap().unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims() -> Claims {
    Claims {
        sub: "alice".into(),
        tenant: "acme".into(),
        roles: vec![Role::Reviewer],
        exp: now() + 3600,
        nbf: None,
        iat: Some(now()),
        iss: "facio".into(),
        aud: "facio".into(),
        jti: None,
    }
}

#[test]
fn a_good_token_names_the_caller() {
    let token = issue_hs256(&claims(), SECRET).unwrap();
    let identity = verifier().verify(&token).unwrap();
    assert_eq!(identity.tenant.as_str(), "acme");
    assert!(identity.may(&[Role::Reviewer]) && !identity.may(&[Role::Operator]));
    let admin = Identity {
        jti: None,
        roles: vec![Role::Admin],
        ..identity
    };
    assert!(admin.may(&[Role::Operator]));
}

#[test]
fn bad_tokens_are_refused_with_their_reason() {
    let v = verifier();
    let expired = Claims {
        exp: now() - 3600,
        ..claims()
    };
    assert_eq!(
        v.verify(&issue_hs256(&expired, SECRET).unwrap()),
        Err(AuthError::Expired)
    );
    let early = Claims {
        nbf: Some(now() + 3600),
        ..claims()
    };
    assert_eq!(
        v.verify(&issue_hs256(&early, SECRET).unwrap()),
        Err(AuthError::NotYetValid)
    );
    let audience = Claims {
        aud: "other".into(),
        ..claims()
    };
    assert_eq!(
        v.verify(&issue_hs256(&audience, SECRET).unwrap()),
        Err(AuthError::Audience)
    );
    let issuer = Claims {
        iss: "evil".into(),
        ..claims()
    };
    assert_eq!(
        v.verify(&issue_hs256(&issuer, SECRET).unwrap()),
        Err(AuthError::Issuer)
    );
    let forged = issue_hs256(&claims(), "another-secret-that-is-long-enough-xx").unwrap();
    assert_eq!(v.verify(&forged), Err(AuthError::Signature));
    assert_eq!(v.verify("not-a-token"), Err(AuthError::Malformed));

    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let body = b64(&serde_json::to_string(&claims()).unwrap());
    let none = format!("{}.{body}.", b64(r#"{"alg":"none","typ":"JWT"}"#));
    assert_eq!(v.verify(&none), Err(AuthError::Algorithm("none".into())));
    let rs = format!("{}.{body}.c2ln", b64(r#"{"alg":"RS256","typ":"JWT"}"#));
    assert_eq!(
        v.verify(&rs),
        Err(AuthError::Algorithm("RS256".into())),
        "no RSA key is configured"
    );
}

#[test]
fn weak_secrets_are_refused_and_no_keys_means_no_jwt() {
    let weak = AuthConfig {
        hs256_secret: Some("short".into()),
        ..AuthConfig::default()
    };
    assert!(matches!(
        Verifier::from_config(&weak),
        Err(AuthError::Config(_))
    ));
    assert!(
        Verifier::from_config(&AuthConfig::default())
            .unwrap()
            .is_none()
    );
}
