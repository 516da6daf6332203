from rtmn_shared.service import main
from wallet.app import SERVICE

main(SERVICE)
