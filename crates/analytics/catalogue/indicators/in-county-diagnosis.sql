-- views: encounter, institution, patient
-- Every visit of a resident whose home county is known; in the numerator when the
-- institution's address code is the resident's county.
WITH institutions AS MATERIALIZED (SELECT id, county_code FROM institution),
     residents AS MATERIALIZED (
       SELECT id, county, county_code, sex, birth_date FROM patient WHERE county_code IS NOT NULL)
SELECT 'Encounter/' || e.id AS subject,
       1 AS denominator,
       CASE WHEN i.county_code = r.county_code THEN 1 ELSE 0 END AS numerator,
       r.county AS county,
       substr(e.start, 1, 7) AS month,
       r.sex AS sex,
       age_band(r.birth_date, substr(e.start, 1, 10)) AS age_band
FROM encounter e
JOIN residents r ON r.id = e.patient
LEFT JOIN institutions i ON i.id = e.institution
WHERE substr(e.start, 1, 10) BETWEEN :period_start AND :period_end
  AND e.status NOT IN ('cancelled', 'entered-in-error')
