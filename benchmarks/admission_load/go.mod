module incident-bot/benchmarks/admission_load

go 1.22
