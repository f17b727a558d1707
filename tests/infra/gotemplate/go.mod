module firedrill.local/gotemplate

go 1.19
