mod accounting;
mod bad_files;
mod crash;
mod deliveries;
mod formats;
mod redelivery;
