#!../../bin/linux-x86_64/gateway
# Example start-up of the ready gateway IOC:
#     cd iocBoot/iocGateway; ../../bin/<arch>/gateway st.cmd
< envPaths

# The gateway's own CA server takes the CA port; the IOC's RSRV stays out
# (it would otherwise hold the same port). Set before the dbd registers it.
epicsEnvSet("EPICS_IOC_IGNORE_SERVERS", "rsrv")

cd "${TOP}"
dbLoadDatabase "dbd/gatewayIoc.dbd"
gatewayIoc_registerRecordDeviceDriver pdbbase

# The gateway IOC's own records, served through the gateway's server.
dbLoadRecords "db/demo.db", "P=gw:"

# Classic gateway options; called before iocInit, the server starts with the IOC.
# The server listens on port 5064; names that are not records of this IOC
# are looked for upstream, here in the IOCs on 127.0.0.1 port 5066 (the
# demo's upstream IOC, scripts/demo). On a real gateway host: -sip with the
# office-side interface, -cip with the machine network's addresses.
gwStart "-sport 5064 -cip 127.0.0.1 -cport 5066"

cd "${TOP}/iocBoot/${IOC}"
iocInit

gwVersion
gwReport 1
