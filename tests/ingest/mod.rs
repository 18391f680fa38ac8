mod accounting;
mod crash;
mod formats;
mod redelivery;
