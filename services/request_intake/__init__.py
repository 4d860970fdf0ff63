"""request-intake: ITSM ticket transitions (ServiceNow, Jira Service Management, generic CloudEvents) become
one normalized `TicketEvent` each on `itsm.tickets.v1`, by signed webhook or by raw Kafka topic alike."""
