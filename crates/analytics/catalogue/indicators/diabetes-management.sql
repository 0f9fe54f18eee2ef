-- views: condition, chronic_programme, patient
-- Residents with an active diabetes diagnosis (ICD-10 E11-E11) recorded by the end of the
-- period; in the numerator when enrolled in the type-2-diabetes programme during the period.
WITH diagnosed AS MATERIALIZED (
       SELECT DISTINCT patient FROM condition
       WHERE substr(upper(replace(icd10, '.', '')), 1, 3) BETWEEN 'E11' AND 'E11'
         AND coalesce(clinical_status, 'active') IN ('active', 'recurrence', 'relapse')
         AND substr(coalesce(onset, recorded, ''), 1, 10) <= :period_end),
     enrolled AS MATERIALIZED (
       SELECT DISTINCT patient FROM chronic_programme
       WHERE programme = 'type-2-diabetes' AND status <> 'entered-in-error'
         AND substr(start, 1, 10) <= :period_end
         AND (`end` IS NULL OR substr(`end`, 1, 10) >= :period_start))
SELECT 'Patient/' || p.id AS subject,
       1 AS denominator,
       CASE WHEN p.id IN (SELECT patient FROM enrolled) THEN 1 ELSE 0 END AS numerator,
       p.county AS county,
       p.record_keeper AS institution,
       p.sex AS sex,
       age_band(p.birth_date, :period_end) AS age_band
FROM patient p
WHERE p.id IN (SELECT patient FROM diagnosed)
