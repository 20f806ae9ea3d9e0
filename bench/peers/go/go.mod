module netlab/bench/peers/go

go 1.19
