use actix_web::{get, post, route, routes, web, App, Responder};
use underscore_actix::underscore_route;

/// Lists things.
///
/// More text that is not the first line.
#[underscore_route]
#[get("/items")]
async fn list() -> impl Responder {
    "items"
}

#[underscore_route(name = "create-item")]
#[post("/items", name = "ignored_because_underscore_name_wins")]
async fn create() -> impl Responder {
    "created"
}

#[underscore_route]
#[route("/multi", method = "GET", method = "PUT")]
async fn multi() -> impl Responder {
    "multi"
}

#[underscore_route]
#[routes]
#[get("/a")]
#[post("/b")]
async fn both() -> impl Responder {
    "both"
}

#[underscore_route]
#[actix_web::put("/qualified", name = "qualified_put",)]
async fn qualified() -> impl Responder {
    "qualified"
}

mod nested {
    use actix_web::{delete, Responder};
    use underscore_actix::underscore_route;

    #[underscore_route]
    #[delete("/items/{id}")]
    pub async fn remove() -> impl Responder {
        "removed"
    }
}

fn main() {
    let _app = App::new().service(
        web::scope("/api")
            .service(list)
            .service(create)
            .service(multi)
            .service(both)
            .service(qualified)
            .service(nested::remove),
    );
    let reg = underscore_actix::core::registry();
    let ids: Vec<&str> = reg.annotated().iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["both", "create-item", "list", "multi", "qualified_put", "remove"]);
    let meta = |id: &str| reg.annotated().iter().find(|(i, _)| i == id).unwrap().1;
    assert_eq!(meta("list").doc, "Lists things.");
    assert_eq!(meta("list").handler, concat!(module_path!(), "::list"));
    assert_eq!(meta("list").line, 9);
    assert_eq!(meta("multi").methods, ["GET", "PUT"]);
    assert_eq!(meta("both").methods, ["GET", "POST"]);
    assert_eq!(meta("both").paths, ["/a", "/b"]);
    assert_eq!(meta("remove").handler, concat!(module_path!(), "::nested::remove"));
    assert_eq!(meta("create-item").doc, "");
}
