from rtmn_shared.entry import main
from wallet.app import SERVICE

main(SERVICE)
