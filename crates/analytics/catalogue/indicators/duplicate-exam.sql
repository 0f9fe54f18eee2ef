-- views: imaging_order, institution, patient
-- Imaging orders written in the period; in the numerator when the same resident had an order
-- of the same exam (LOINC code) written in the 30 days before, at any institution.
WITH orders AS MATERIALIZED (
       SELECT id, patient, code, performer, authored, julianday(authored) AS day
       FROM imaging_order
       WHERE status NOT IN ('revoked', 'entered-in-error') AND authored IS NOT NULL),
     institutions AS MATERIALIZED (SELECT id, level FROM institution),
     residents AS MATERIALIZED (SELECT id, county FROM patient)
SELECT 'ServiceRequest/' || o.id AS subject,
       1 AS denominator,
       CASE WHEN EXISTS (
         SELECT 1 FROM orders e
         WHERE e.patient = o.patient AND e.code = o.code AND e.id <> o.id
           AND e.day < o.day AND e.day >= o.day - 30) THEN 1 ELSE 0 END AS numerator,
       o.performer AS institution,
       i.level AS level,
       r.county AS county,
       substr(o.authored, 1, 7) AS month
FROM orders o
LEFT JOIN institutions i ON i.id = o.performer
LEFT JOIN residents r ON r.id = o.patient
WHERE substr(o.authored, 1, 10) BETWEEN :period_start AND :period_end
