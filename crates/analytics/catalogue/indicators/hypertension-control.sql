-- views: chronic_programme, blood_pressure, patient
-- Residents enrolled in the hypertension programme during the period with a blood pressure
-- taken in it; in the numerator when the last one is controlled (below 140/90 mmHg; from 65
-- years of age on the reading's date, below 150/90), as the chronic service judges readings.
WITH enrolled AS MATERIALIZED (
       SELECT DISTINCT patient FROM chronic_programme
       WHERE programme = 'hypertension' AND status <> 'entered-in-error'
         AND substr(start, 1, 10) <= :period_end
         AND (`end` IS NULL OR substr(`end`, 1, 10) >= :period_start)),
     readings AS MATERIALIZED (
       SELECT patient, id, effective, systolic, diastolic,
              row_number() OVER (PARTITION BY patient ORDER BY effective DESC, id DESC) AS latest
       FROM blood_pressure
       WHERE substr(effective, 1, 10) BETWEEN :period_start AND :period_end
         AND patient IN (SELECT patient FROM enrolled))
SELECT 'Patient/' || p.id AS subject,
       1 AS denominator,
       CASE WHEN coalesce(b.systolic, 0) <
                 CASE WHEN age_years(p.birth_date, substr(b.effective, 1, 10)) >= 65 THEN 150 ELSE 140 END
             AND coalesce(b.diastolic, 0) < 90 THEN 1 ELSE 0 END AS numerator,
       p.county AS county,
       p.record_keeper AS institution,
       p.sex AS sex,
       age_band(p.birth_date, :period_end) AS age_band
FROM readings b
JOIN patient p ON p.id = b.patient
WHERE b.latest = 1
