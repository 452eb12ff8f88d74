"""Population scale: the readmission cohort and syndrome case counts over whole exports, in
this process or on Apache Spark, with the same per-patient and per-resource Python code."""
