"""What executes: sessions to the hosts, the inspect/plan/apply/audit pipelines, the apply
lock, its journal and the rollback."""
