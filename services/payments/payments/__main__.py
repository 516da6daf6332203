from payments.app import SERVICE
from rtmn_shared.service import main

main(SERVICE)
