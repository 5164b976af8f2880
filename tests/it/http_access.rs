//! Access over HTTP (in-process router): tiers, organisation keys, revoked and malformed keys,
//! and who may write what.

use crate::support::*;
use serde_json::json;

/// An anonymous caller on an admin action: 401 `unauthenticated` (or 403 `admin_only`).
#[track_caller]
fn anonymous_refused(r: Resp) {
    if r.status == 401 {
        r.problem(401, "unauthenticated");
    } else {
        r.problem(403, "admin_only");
    }
}

const POINT_LAYERS: [&str; 3] = ["incidents", "facilities", "baseline"];

async fn setup() -> TestApp {
    let app = TestApp::new();
    app.load_zaandam("zd").await;
    app.load_zaandam_layers("zd").await;
    app
}

#[tokio::test]
async fn tiers_see_what_they_may() {
    let app = setup().await;
    let (open, _) = app.key("buurtapp", "open").await;
    let (closed, _) = app.key("politie", "closed").await;
    let (private, _) = app.key("gemeente", "private").await;
    let items = |layer: &str| get(format!("/collections/zd.{layer}/items?limit=5"));
    // anonymous = open tier
    for layer in POINT_LAYERS {
        app.call(items(layer)).await.problem(403, "tier_forbidden");
        app.call(items(layer).key(&open))
            .await
            .problem(403, "tier_forbidden");
        app.call(items(layer).key(&closed))
            .await
            .problem(403, "tier_forbidden");
        app.call(items(layer).key(&private)).await.expect(200);
        app.call(items(layer).admin()).await.expect(200);
    }
    // the study area polygon and the catalogue are for everyone
    for key in [None, Some(&open), Some(&closed)] {
        let mut r = items("study_area");
        if let Some(k) = key {
            r = r.key(k);
        }
        let v = app.call(r).await.expect(200).json();
        assert_eq!(v["features"][0]["geometry"]["type"], json!("MultiPolygon"));
    }
    app.call(get("/collections")).await.expect(200);
    app.call(get("/datasets")).await.expect(200);
    // a single incident is as protected as the list
    let first = app
        .call(items("incidents").admin())
        .await
        .expect(200)
        .json();
    let fid = first["features"][0]["id"].as_i64().expect("fid");
    app.call(get(format!("/collections/zd.incidents/items/{fid}")))
        .await
        .problem(403, "tier_forbidden");
    app.call(get(format!("/collections/zd.incidents/items/{fid}")).key(&private))
        .await
        .expect(200);
    // private sees everything: all 5,000
    let v = app
        .call(get("/collections/zd.incidents/items?limit=1").key(&private))
        .await
        .expect(200)
        .json();
    assert_eq!(v["numberMatched"], json!(5000));
}

#[tokio::test]
async fn organisations_list_their_own_incidents() {
    let app = setup().await;
    let m = manifest();
    let (politie, _) = app.key("politie", "closed").await;
    let (ggd_open, _) = app.key("ggd", "open").await;
    let own = |q: &str| get(format!("/collections/zd.incidents/items?limit=10000&{q}"));
    let v = app
        .call(own("source=politie").key(&politie))
        .await
        .expect(200)
        .json();
    assert_eq!(
        v["numberMatched"],
        m["counts"]["incidents_by_source"]["politie"]
    );
    assert!(
        v["features"]
            .as_array()
            .expect("f")
            .iter()
            .all(|f| f["properties"]["source"] == "politie")
    );
    let v = app
        .call(own("source=ggd").key(&ggd_open))
        .await
        .expect(200)
        .json();
    assert_eq!(
        v["numberMatched"],
        m["counts"]["incidents_by_source"]["ggd"]
    );
    // another organisation's records, or a mix, or no filter: 403
    app.call(own("source=ggd").key(&politie))
        .await
        .problem(403, "tier_forbidden");
    app.call(own("source=politie,ggd").key(&politie))
        .await
        .problem(403, "tier_forbidden");
    app.call(own("").key(&politie))
        .await
        .problem(403, "tier_forbidden");
    app.call(own("source=politie"))
        .await
        .problem(403, "tier_forbidden");
    // own facilities do not exist: facilities stay forbidden even with source
    app.call(get("/collections/zd.facilities/items?source=politie").key(&politie))
        .await
        .expect_not(200);
    // single features: own yes, foreign no
    let pol = app
        .call(own("source=politie").admin())
        .await
        .expect(200)
        .json();
    let gem = app
        .call(own("source=gemeente").admin())
        .await
        .expect(200)
        .json();
    let pfid = pol["features"][0]["id"].as_i64().expect("fid");
    let gfid = gem["features"][0]["id"].as_i64().expect("fid");
    app.call(get(format!("/collections/zd.incidents/items/{pfid}")).key(&politie))
        .await
        .expect(200);
    app.call(get(format!("/collections/zd.incidents/items/{gfid}")).key(&politie))
        .await
        .problem(403, "tier_forbidden");
}

#[tokio::test]
async fn bad_and_revoked_keys() {
    let app = setup().await;
    let (key, id) = app.key("gemeente", "private").await;
    let req = || get("/collections/zd.incidents/items?limit=1");
    app.call(req().key(&key)).await.expect(200);
    let keys = app
        .call(get("/admin/keys").admin())
        .await
        .expect(200)
        .json();
    let listed = keys.to_string();
    assert!(listed.contains(&id), "{listed}");
    assert!(!listed.contains(&key), "the key itself is never listed");
    app.call(delete(format!("/admin/keys/{id}")).admin())
        .await
        .expect(204);
    app.call(req().key(&key)).await.problem(401, "bad_key");
    app.call(req().key("hs_0000000000000000000000000000000000000000000000000000000000000000"))
        .await
        .problem(401, "bad_key");
    for h in ["Basic dXNlcjpwYXNz", "Bearer", "Token abc", "bearerabc"] {
        app.call(req().header("authorization", h))
            .await
            .problem(401, "bad_authorization");
    }
    // the admin routes are for the admin only
    app.call(get("/admin/keys").key(&app.key("x", "private").await.0))
        .await
        .problem(403, "admin_only");
    anonymous_refused(app.call(get("/admin/keys")).await);
    app.call(delete("/admin/keys/hs_nothere").admin())
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn who_may_write_what() {
    let app = setup().await;
    let (private, _) = app.key("gemeente", "private").await;
    let (politie, _) = app.key("politie", "closed").await;
    // dataset management and non-incident layers are for the admin
    app.call(post_json("/datasets", &json!({"id": "mine"})).key(&private))
        .await
        .problem(403, "admin_only");
    app.call(delete("/datasets/zd").key(&private))
        .await
        .problem(403, "admin_only");
    anonymous_refused(app.call(delete("/datasets/zd")).await);
    let fac = read_fixture("zaandam/facilities.geojson");
    app.call(
        post(
            "/datasets/zd/facilities",
            "application/geo+json",
            fac.clone(),
        )
        .key(&private),
    )
    .await
    .problem(403, "admin_only");
    app.call(post("/datasets/zd/baseline", "text/csv", "id,x,y\n").key(&politie))
        .await
        .problem(403, "admin_only");
    // anonymous callers may not write at all
    app.call(post(
        "/datasets/zd/incidents",
        "text/csv",
        generated_incidents("A", 2, "gemeente"),
    ))
    .await
    .problem(401, "unauthenticated");
    // an organisation writes its own incidents; a foreign source is a rejected row
    let body = incidents_csv(&[
        (
            "OWN-1".into(),
            "2024-05-01T10:00:00Z",
            "burenruzie",
            "politie",
            "",
            4.829,
            52.4395,
        ),
        (
            "OWN-2".into(),
            "2024-05-01T10:00:00Z",
            "burenruzie",
            "ggd",
            "",
            4.829,
            52.4395,
        ),
        (
            "OWN-3".into(),
            "2024-05-01T10:00:00Z",
            "burenruzie",
            "",
            "",
            4.829,
            52.4395,
        ),
    ]);
    let v = app
        .call(post("/datasets/zd/incidents", "text/csv", body).key(&politie))
        .await
        .expect(200)
        .json();
    assert_eq!(v["accepted"], json!(2), "{v}");
    let rej = v["rejected"].as_array().expect("rejected");
    assert_eq!(rej.len(), 1, "{v}");
    assert_eq!(rej[0]["row"], json!(2));
    assert!(
        rej[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("organisation"),
        "{v}"
    );
    // the row without a source became politie's
    let own = app
        .call(
            get("/collections/zd.incidents/items?source=politie&datetime=2024-05-01T10:00:00Z")
                .key(&politie),
        )
        .await
        .expect(200)
        .json();
    let ids: Vec<&str> = own["features"]
        .as_array()
        .expect("f")
        .iter()
        .filter_map(|f| f["properties"]["external_id"].as_str())
        .collect();
    assert!(ids.contains(&"OWN-1") && ids.contains(&"OWN-3"), "{ids:?}");
    let ggd = app
        .call(
            get("/collections/zd.incidents/items?source=ggd&datetime=2024-05-01T10:00:00Z").admin(),
        )
        .await
        .expect(200)
        .json();
    assert!(!ggd.to_string().contains("OWN-2"));
}

#[tokio::test]
async fn non_members_cannot_reach_a_dataset() {
    let app = setup().await;
    let (stranger, _) = app.key("stranger", "private").await;
    let body = generated_incidents("ST", 2, "stranger");
    app.call(post("/datasets/zd/incidents", "text/csv", body).key(&stranger))
        .await
        .problem(404, "not_found");
    assert_eq!(app.matched("zd.incidents", "source=stranger").await, 0);
    app.call(get("/collections/zd.incidents/items").key(&stranger))
        .await
        .problem(404, "not_found");
    let list = app
        .call(get("/datasets").key(&stranger))
        .await
        .expect(200)
        .json();
    assert_eq!(list["datasets"], json!([]));
}
