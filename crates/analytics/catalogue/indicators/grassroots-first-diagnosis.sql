-- views: encounter, institution, patient
-- First contacts: outpatient and emergency visits that are not follow-ups, health checks or
-- visits on a referral; in the numerator when given at a village clinic or township centre.
WITH institutions AS MATERIALIZED (SELECT id, level FROM institution),
     residents AS MATERIALIZED (SELECT id, county, sex, birth_date FROM patient)
SELECT 'Encounter/' || e.id AS subject,
       1 AS denominator,
       CASE WHEN i.level IN ('village-clinic', 'township-health-center') THEN 1 ELSE 0 END AS numerator,
       r.county AS county,
       substr(e.start, 1, 7) AS month,
       r.sex AS sex,
       age_band(r.birth_date, substr(e.start, 1, 10)) AS age_band
FROM encounter e
JOIN residents r ON r.id = e.patient
LEFT JOIN institutions i ON i.id = e.institution
WHERE substr(e.start, 1, 10) BETWEEN :period_start AND :period_end
  AND e.status NOT IN ('cancelled', 'entered-in-error')
  AND e.class IN ('AMB', 'EMER')
  AND e.referral IS NULL
  AND coalesce(e.type, '') NOT IN ('390906007', '162673000')
