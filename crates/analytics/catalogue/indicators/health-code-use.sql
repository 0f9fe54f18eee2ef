-- views: patient
-- Residents living at the end of the period (born by then, not deceased); in the numerator
-- when they hold an electronic health card (the health code).
SELECT 'Patient/' || p.id AS subject,
       1 AS denominator,
       CASE WHEN p.has_health_code THEN 1 ELSE 0 END AS numerator,
       p.county AS county,
       p.record_keeper AS institution,
       p.sex AS sex,
       age_band(p.birth_date, :period_end) AS age_band
FROM patient p
WHERE coalesce(p.deceased, 0) = 0
  AND (p.birth_date IS NULL OR substr(p.birth_date, 1, 10) <= :period_end)
