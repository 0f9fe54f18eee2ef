//! Link, unlink and merge master records, and the review queue. Every operation is one
//! transaction that writes new Person versions (history keeps the old ones) and an AuditEvent.
//! Undoing a wrong link restores both Persons: a Person merged away keeps the Patients it held
//! (as `former-link` extensions), and unlinking one of them brings it back with them.

use caller::Caller;
use repository::{InTransaction, Repository, RepositoryError};
use serde_json::{Value, json};

use super::hook::Candidate;
use super::person::{Link, PersonState};
use super::{MPI_SYSTEM, Mpi};
use crate::IdentityError;
use crate::compare::Field;

/// What a link or unlink changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkOutcome {
    /// The Persons written, in the order written.
    pub persons: Vec<String>,
}

/// A person's answer to a review Task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewDecision {
    /// Same person: link the Patient to the candidate Person.
    Accept,
    /// Different people: leave both as they are.
    Reject,
}

fn not_found(message: String) -> RepositoryError {
    RepositoryError::NotFound(message)
}

impl Mpi {
    /// Queues a pair for review: a Task naming the Patient, the Person it now has and the
    /// candidate Person, with the score and what agreed and disagreed.
    pub(crate) fn queue_review(
        &self,
        tx: &mut InTransaction<'_, '_>,
        patient: &str,
        own_person: &str,
        candidate: &Candidate,
    ) -> Result<(), RepositoryError> {
        let score = candidate.verdict.score;
        let mut reasons: Vec<String> = Field::ALL
            .iter()
            .filter(|f| score.comparison.level(**f) != 0)
            .map(|f| {
                format!(
                    "{}: {}",
                    f.name(),
                    f.level_label(score.comparison.level(*f))
                )
            })
            .collect();
        for conflict in &candidate.verdict.conflicts {
            reasons.insert(0, format!("conflict: {}", conflict.describe()));
        }
        let probability = (score.probability * 10_000.0).round() / 10_000.0;
        let task = json!({
            "resourceType": "Task",
            "status": "requested",
            "intent": "proposal",
            "priority": if candidate.verdict.conflicts.is_empty() { "routine" } else { "urgent" },
            "code": {"coding": [{"system": MPI_SYSTEM, "code": "match-review", "display": "Review a possible match"}]},
            "description": format!("Is Patient/{patient} the resident of Person/{}?", candidate.person.id),
            "focus": {"reference": format!("Patient/{patient}")},
            "for": {"reference": format!("Person/{}", candidate.person.id)},
            "authoredOn": fhir_model::clock::format_instant(fhir_model::clock::now_micros()),
            "input": [
                {"type": {"text": "candidate"}, "valueReference": {"reference": format!("Person/{}", candidate.person.id)}},
                {"type": {"text": "current"}, "valueReference": {"reference": format!("Person/{own_person}")}},
                {"type": {"text": "score"}, "valueDecimal": probability},
                {"type": {"text": "evidence"}, "valueString": reasons.join("; ")}
            ]
        });
        tx.create(task)?;
        Ok(())
    }

    /// Links `patient` to `person` (level4: a person decided). The Person it leaves is
    /// recomputed, or, left empty, made inactive and pointed at `person`, remembering the
    /// Patient so that unlinking restores it.
    pub fn link(
        &self,
        repository: &Repository,
        ctx: &Caller,
        person: &str,
        patient: &str,
    ) -> Result<LinkOutcome, IdentityError> {
        Ok(repository.run_in_transaction(ctx, |tx| self.link_in(tx, person, patient))?)
    }

    fn link_in(
        &self,
        tx: &mut InTransaction<'_, '_>,
        person: &str,
        patient: &str,
    ) -> Result<LinkOutcome, RepositoryError> {
        let mut target = self
            .read_person(tx, person)?
            .ok_or_else(|| not_found(format!("Person/{person} does not exist")))?;
        if !target.active {
            return Err(RepositoryError::Conflict(format!(
                "Person/{person} is inactive (merged into another); link to the Person it was merged into"
            )));
        }
        if tx.read("Patient", patient)?.is_none() {
            return Err(not_found(format!("Patient/{patient} does not exist")));
        }
        if target.links.iter().any(|l| l.patient == patient) {
            return Err(RepositoryError::Conflict(format!(
                "Patient/{patient} is already linked to Person/{person}"
            )));
        }
        let mut written = Vec::new();
        if let Some(mut source) = self.person_of(tx, patient)? {
            source.links.retain(|l| l.patient != patient);
            if source.links.is_empty() {
                source.active = false;
                source.merged_into = Some(target.id.clone());
                source.former = vec![patient.to_owned()];
            }
            self.write_person(tx, &source)?;
            written.push(source.id.clone());
        }
        target.links.push(Link {
            patient: patient.to_owned(),
            assurance: "level4",
            score: None,
        });
        self.write_person(tx, &target)?;
        written.push(target.id.clone());
        self.audit(
            tx,
            "link",
            &[&format!("Person/{person}"), &format!("Patient/{patient}")],
            None,
        )?;
        Ok(LinkOutcome { persons: written })
    }

    /// Unlinks `patient` from `person`. If the Patient came with a Person merged away, that
    /// Person is restored with every Patient it held that `person` still has; otherwise the
    /// Patient gets a Person of its own.
    pub fn unlink(
        &self,
        repository: &Repository,
        ctx: &Caller,
        person: &str,
        patient: &str,
    ) -> Result<LinkOutcome, IdentityError> {
        Ok(repository.run_in_transaction(ctx, |tx| {
            let mut from = self
                .read_person(tx, person)?
                .ok_or_else(|| not_found(format!("Person/{person} does not exist")))?;
            if !from.links.iter().any(|l| l.patient == patient) {
                return Err(RepositoryError::Conflict(format!(
                    "Patient/{patient} is not linked to Person/{person}"
                )));
            }
            // A Person merged into this one that held the Patient.
            let merged = tx.search(
                "Person",
                &[("link".to_owned(), format!("Person/{person}"))],
                50,
            )?;
            let mut restored: Option<PersonState> = None;
            for record in merged {
                if let Some(state) = self.read_person(tx, &record.id)?
                    && !state.active
                    && state.former.iter().any(|p| p == patient)
                {
                    restored = Some(state);
                    break;
                }
            }
            let moving: Vec<String> = match &restored {
                Some(old) => old
                    .former
                    .iter()
                    .filter(|p| from.links.iter().any(|l| &l.patient == *p))
                    .cloned()
                    .collect(),
                None => vec![patient.to_owned()],
            };
            let moved: Vec<Link> = from
                .links
                .iter()
                .filter(|l| moving.contains(&l.patient))
                .cloned()
                .collect();
            from.links.retain(|l| !moving.contains(&l.patient));
            from.active = !from.links.is_empty();
            let mut written = vec![self.write_person(tx, &from)?];
            let back = match restored {
                Some(mut old) => {
                    old.active = true;
                    old.merged_into = None;
                    old.former.clear();
                    old.links = moved
                        .into_iter()
                        .map(|l| Link {
                            assurance: "level4",
                            score: None,
                            ..l
                        })
                        .collect();
                    old
                }
                None => PersonState {
                    id: String::new(),
                    version: 0,
                    active: true,
                    links: vec![Link {
                        patient: patient.to_owned(),
                        assurance: "level4",
                        score: None,
                    }],
                    merged_into: None,
                    former: Vec::new(),
                },
            };
            let back_id = self.write_person(tx, &back)?;
            written.push(back_id.clone());
            self.audit(
                tx,
                "unlink",
                &[
                    &format!("Person/{person}"),
                    &format!("Patient/{patient}"),
                    &format!("Person/{back_id}"),
                ],
                None,
            )?;
            Ok(LinkOutcome { persons: written })
        })?)
    }

    /// Merges Person `source` into `target`: every Patient of `source` is linked to `target`,
    /// and `source` becomes inactive, pointing at `target` and remembering its Patients.
    pub fn merge(
        &self,
        repository: &Repository,
        ctx: &Caller,
        source: &str,
        target: &str,
    ) -> Result<LinkOutcome, IdentityError> {
        if source == target {
            return Err(IdentityError::invalid(
                "a Person cannot be merged into itself",
                Some("source"),
            ));
        }
        Ok(repository.run_in_transaction(ctx, |tx| {
            let mut from = self
                .read_person(tx, source)?
                .ok_or_else(|| not_found(format!("Person/{source} does not exist")))?;
            let mut into = self
                .read_person(tx, target)?
                .ok_or_else(|| not_found(format!("Person/{target} does not exist")))?;
            if !from.active || !into.active {
                return Err(RepositoryError::Conflict(
                    "both Persons of a merge must be active".into(),
                ));
            }
            from.former = from.links.iter().map(|l| l.patient.clone()).collect();
            into.links.extend(from.links.drain(..).map(|l| Link {
                assurance: "level4",
                ..l
            }));
            from.active = false;
            from.merged_into = Some(into.id.clone());
            self.write_person(tx, &from)?;
            self.write_person(tx, &into)?;
            self.audit(
                tx,
                "merge",
                &[&format!("Person/{source}"), &format!("Person/{target}")],
                None,
            )?;
            Ok(LinkOutcome {
                persons: vec![from.id.clone(), into.id.clone()],
            })
        })?)
    }

    /// Answers a review Task: accepting links its Patient to the candidate Person; rejecting
    /// leaves both. Either way the Task is completed, with who decided in the audit.
    pub fn review(
        &self,
        repository: &Repository,
        ctx: &Caller,
        task: &str,
        decision: ReviewDecision,
    ) -> Result<Value, IdentityError> {
        Ok(repository.run_in_transaction(ctx, |tx| {
            let (record, mut resource) = tx
                .read("Task", task)?
                .ok_or_else(|| not_found(format!("Task/{task} does not exist")))?;
            if !is_match_review(&resource) {
                return Err(RepositoryError::Conflict(format!(
                    "Task/{task} is not a match review"
                )));
            }
            if resource["status"] != "requested" {
                return Err(RepositoryError::Conflict(format!(
                    "Task/{task} was already answered (status {})",
                    resource["status"]
                )));
            }
            let reference = |name: &str| {
                resource["input"]
                    .as_array()
                    .and_then(|inputs| {
                        inputs
                            .iter()
                            .find(|i| i.pointer("/type/text").and_then(Value::as_str) == Some(name))
                    })
                    .and_then(|i| i.pointer("/valueReference/reference"))
                    .and_then(Value::as_str)
                    .map(|r| r.rsplit('/').next().unwrap_or(r).to_owned())
            };
            let candidate = reference("candidate");
            let patient = resource
                .pointer("/focus/reference")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("Patient/"))
                .map(str::to_owned);
            let outcome = match decision {
                ReviewDecision::Accept => {
                    let (Some(candidate), Some(patient)) = (candidate, patient) else {
                        return Err(RepositoryError::Conflict(format!(
                            "Task/{task} does not name its Patient and candidate Person"
                        )));
                    };
                    // The candidate may have been merged since: follow it to where it went.
                    let mut target = candidate;
                    for _ in 0..8 {
                        match self.read_person(tx, &target)? {
                            Some(state) if !state.active => match state.merged_into {
                                Some(next) => target = next,
                                None => break,
                            },
                            _ => break,
                        }
                    }
                    let already = self
                        .person_of(tx, &patient)?
                        .is_some_and(|p| p.id == target);
                    if !already {
                        self.link_in(tx, &target, &patient)?;
                    }
                    "linked"
                }
                ReviewDecision::Reject => "not-linked",
            };
            resource["status"] = json!("completed");
            resource["businessStatus"] = json!({"text": outcome});
            resource["lastModified"] = json!(fhir_model::clock::format_instant(
                fhir_model::clock::now_micros()
            ));
            let updated = tx.update(resource, Some(record.version))?;
            self.audit(
                tx,
                match decision {
                    ReviewDecision::Accept => "review-accept",
                    ReviewDecision::Reject => "review-reject",
                },
                &[&format!("Task/{task}")],
                None,
            )?;
            let content = updated.record.and_then(|r| r.content).unwrap_or_default();
            Ok(serde_json::from_slice(&content).unwrap_or(Value::Null))
        })?)
    }
}

/// Whether `task` is one of the index's match reviews (the Tasks it opens for a possible match).
pub(super) fn is_match_review(task: &Value) -> bool {
    task.pointer("/code/coding")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["system"] == MPI_SYSTEM && c["code"] == "match-review")
        })
}
