"""The one source for names: feature keys, the label, split names, serving signatures.

The pipeline's node ids live with the pipeline (kiko.pipeline.nodes)."""

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
# user_id [None] int64, k int32 scalar -> movie_ids int64 [None, k], ratings float32 [None, k]:
# the k best predicted unrated movies per user (popular well-rated ones for an unknown user).
RECOMMEND_SIGNATURE = "recommend"
RECOMMEND_K = "k"
RECOMMENDED_MOVIE_IDS = "movie_ids"
RECOMMENDED_RATINGS = "ratings"
# Pads a recommendation row with fewer than k candidates (no MovieLens id is 0).
NO_MOVIE_ID = 0

# Extra files of an exported SavedModel (TF Serving's `assets.extra/` folder), so that a served
# model is self-contained for CLIs: the movies seen in training, when the data has titles, as
# UTF-8 TSV with a header, one movie per line, genres joined by CATALOG_GENRE_SEPARATOR, no
# quoting (tabs and line breaks in titles become spaces).
SAVED_MODEL_EXTRA_DIR = "assets.extra"
MOVIE_CATALOG_FILE = "movies.tsv"
CATALOG_GENRE_SEPARATOR = "|"
CATALOG_COLUMNS = (MOVIE_ID, TITLE, GENRES)
ID_FEATURES = (USER_ID, MOVIE_ID)
USER_SIDE_FEATURES = (GENDER, AGE, OCCUPATION, ZIP_PREFIX)
MOVIE_SIDE_FEATURES = (TITLE, YEAR, GENRES)
# Read for the catalog only: a title identifies its movie, nothing to learn beyond the movie's
# own vector.
NOT_MODEL_FEATURES = (TITLE,)

# Number of leading characters of the zip code kept as ZIP_PREFIX.
ZIP_PREFIX_LENGTH = 3

# Splits.
TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"

# The Trainer's account of a training run, written beside its TensorBoard logs (model_run).
METRICS_FILE = "metrics.json"

# Evaluation metric names (TFMA keys of kiko's RatingRegressionErrors metric).
MSE_NAME = "mean_squared_error"
MAE_NAME = "mean_absolute_error"
RMSE_NAME = "root_mean_squared_error"
