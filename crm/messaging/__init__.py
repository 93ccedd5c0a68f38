"""Outgoing SMS and e-mail behind one interface per channel.

- `crm.messaging.sms`: send_sms, prepare_sms, deliver_sms, sender_is_two_way, current_sender
- `crm.messaging.email`: send_email, prepare_email, deliver_email
- `crm.messaging.errors`: SendError and its kinds, classify_error_code, describe_error_code
- `crm.messaging.encoding`: sms_info (GSM-7 / UCS-2, segments)
"""
