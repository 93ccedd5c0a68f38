"""RQ side of Open Lab CRM: queues, jobs and the periodic dispatcher."""
