-- views: workflow_task, institution
-- Tasks of consultations asked of another institution asked in the period, each counted; the turnaround of a completed one is the
-- minutes from asking (authoredOn) to its last change (lastModified, when it completed).
WITH institutions AS MATERIALIZED (SELECT id, level FROM institution)
SELECT 'Task/' || t.id AS subject,
       1 AS initial_population,
       CASE WHEN t.status = 'completed' AND t.last_modified IS NOT NULL
            THEN round((julianday(t.last_modified) - julianday(t.authored)) * 1440, 1) END AS turnaround,
       CASE WHEN t.reads_observation THEN 'ecg' WHEN t.reads_imaging_study THEN 'imaging'
            ELSE 'other' END AS modality,
       t.status AS status,
       t.recipient AS institution,
       i.level AS level,
       substr(t.authored, 1, 7) AS month
FROM workflow_task t
LEFT JOIN institutions i ON i.id = t.recipient
WHERE t.kind = 'consultation'
  AND substr(t.authored, 1, 10) BETWEEN :period_start AND :period_end
  AND t.status <> 'entered-in-error'
