pub use recsys_data as data;
pub use recsys_models as models;
pub use recsys_serve as serve;
pub use recsys_train as train;
