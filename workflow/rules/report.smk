# report stage: rules added by the report work.
