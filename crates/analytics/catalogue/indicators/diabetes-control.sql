-- views: chronic_programme, glucose, patient
-- Residents enrolled in the type 2 diabetes programme during the period with a fasting or
-- capillary glucose taken in it; in the numerator when the last one is controlled (above 3.9
-- and below 7.0 mmol/L; mg/dL divided by 18), as the chronic service judges readings.
WITH enrolled AS MATERIALIZED (
       SELECT DISTINCT patient FROM chronic_programme
       WHERE programme = 'type-2-diabetes' AND status <> 'entered-in-error'
         AND substr(start, 1, 10) <= :period_end
         AND (`end` IS NULL OR substr(`end`, 1, 10) >= :period_start)),
     readings AS MATERIALIZED (
       SELECT patient, id,
              CASE WHEN unit = 'mg/dL' THEN value / 18.0 ELSE value END AS mmol,
              row_number() OVER (PARTITION BY patient ORDER BY effective DESC, id DESC) AS latest
       FROM glucose
       WHERE code IN ('14771-0', '14743-9') AND value IS NOT NULL
         AND coalesce(unit, 'mmol/L') IN ('mmol/L', 'mg/dL')
         AND substr(effective, 1, 10) BETWEEN :period_start AND :period_end
         AND patient IN (SELECT patient FROM enrolled))
SELECT 'Patient/' || p.id AS subject,
       1 AS denominator,
       CASE WHEN g.mmol > 3.9 AND g.mmol < 7.0 THEN 1 ELSE 0 END AS numerator,
       p.county AS county,
       p.record_keeper AS institution,
       p.sex AS sex,
       age_band(p.birth_date, :period_end) AS age_band
FROM readings g
JOIN patient p ON p.id = g.patient
WHERE g.latest = 1
