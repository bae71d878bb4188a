//! `underscore top`: a live view of the routes and the longest-running tasks.
//!
//! Three parts, so that what is shown can be tested without a terminal:
//! [`model`] turns the nodes' [`model::Snapshot`]s into a [`model::Model`] (rates between two
//! polls, sort, selection, prompts), [`view::render`] draws a model into a frame and nothing
//! else, and [`app`] polls the sockets, reads the keys and owns the terminal.

pub mod app;
pub mod model;
pub mod view;
