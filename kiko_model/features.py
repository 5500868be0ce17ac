"""The one source for names: feature keys, the label, split names and component ids."""

# Raw features written by MovieLensExampleGen (one tf.Example per rating).
USER_ID = "user_id"
MOVIE_ID = "movie_id"
RATING = "rating"  # the label
TIMESTAMP = "timestamp"

# Side features from a users file (ML-100K u.user, ML-1M users.dat), when the data has one.
GENDER = "gender"
AGE = "age"
OCCUPATION = "occupation"
ZIP_PREFIX = "zip_prefix"

# Side features from a movies file (u.item, movies.dat, movies.csv), when the data has one.
TITLE = "title"
YEAR = "year"
GENRES = "genres"  # multi-valued

LABEL_KEY = RATING

# The exported SavedModel: signature names and the prediction's output key.
SERVING_SIGNATURE = "serving_default"  # serialized tf.Example -> rating (TFMA, TF Serving)
PREDICT_SIGNATURE = "predict_ratings"  # user_id, movie_id -> rating
PREDICTION_KEY = "rating"
ID_FEATURES = (USER_ID, MOVIE_ID)
USER_SIDE_FEATURES = (GENDER, AGE, OCCUPATION, ZIP_PREFIX)
MOVIE_SIDE_FEATURES = (TITLE, YEAR, GENRES)

# Number of leading characters of the zip code kept as ZIP_PREFIX.
ZIP_PREFIX_LENGTH = 3

# Splits.
TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"

# Pipeline node ids (every node gets an explicit .with_id()).
EXAMPLE_GEN_ID = "MovieLensExampleGen"
STATISTICS_GEN_ID = "StatisticsGen"
SCHEMA_GEN_ID = "ImportSchemaGen"
EXAMPLE_VALIDATOR_ID = "ExampleValidator"
ANOMALIES_GATE_ID = "AnomaliesGate"
TRAINER_ID = "Trainer"
MODEL_RESOLVER_ID = "BaselineModelResolver"
EVALUATOR_ID = "Evaluator"
PUSHER_ID = "Pusher"
