-- views: chronic_programme, encounter, patient
-- Residents enrolled in the hypertension or type 2 diabetes programme for the whole period;
-- in the numerator with a follow-up visit (SNOMED CT 390906007) for every three months of it
-- (four in a year), at any institution.
WITH enrolled AS MATERIALIZED (
       SELECT DISTINCT patient FROM chronic_programme
       WHERE programme IN ('hypertension', 'type-2-diabetes') AND status <> 'entered-in-error'
         AND substr(start, 1, 10) <= :period_start
         AND (`end` IS NULL OR substr(`end`, 1, 10) >= :period_end)),
     follow_ups AS MATERIALIZED (
       SELECT patient, count(*) AS visits FROM encounter
       WHERE type = '390906007' AND status NOT IN ('cancelled', 'entered-in-error')
         AND substr(start, 1, 10) BETWEEN :period_start AND :period_end
       GROUP BY patient)
SELECT 'Patient/' || p.id AS subject,
       1 AS denominator,
       CASE WHEN coalesce(f.visits, 0) * 3 >= :period_months THEN 1 ELSE 0 END AS numerator,
       p.county AS county,
       p.record_keeper AS institution,
       p.sex AS sex,
       age_band(p.birth_date, :period_end) AS age_band
FROM patient p
LEFT JOIN follow_ups f ON f.patient = p.id
WHERE p.id IN (SELECT patient FROM enrolled)
