from payments.app import SERVICE
from rtmn_shared.entry import main

main(SERVICE)
