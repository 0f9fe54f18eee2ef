-- views: referral, encounter, institution, patient
-- Every referral written in the period, up or down; from the institution of the visit that
-- wrote it, to the institution it names.
WITH institutions AS MATERIALIZED (SELECT id, level FROM institution),
     residents AS MATERIALIZED (SELECT id, county FROM patient),
     visits AS MATERIALIZED (
       SELECT e.id, e.institution FROM encounter e
       WHERE e.id IN (SELECT encounter FROM referral WHERE encounter IS NOT NULL))
SELECT 'ServiceRequest/' || f.id AS subject,
       1 AS initial_population,
       f.direction AS direction,
       v.institution AS from_institution,
       fi.level AS from_level,
       f.to_institution AS to_institution,
       ti.level AS to_level,
       r.county AS county,
       substr(f.authored, 1, 7) AS month
FROM referral f
LEFT JOIN visits v ON v.id = f.encounter
LEFT JOIN institutions fi ON fi.id = v.institution
LEFT JOIN institutions ti ON ti.id = f.to_institution
LEFT JOIN residents r ON r.id = f.patient
WHERE substr(f.authored, 1, 10) BETWEEN :period_start AND :period_end
  AND f.status NOT IN ('revoked', 'entered-in-error')
